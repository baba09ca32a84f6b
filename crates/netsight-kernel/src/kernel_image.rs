//! The running kernel's descriptions of itself: its BTF (types, for CO-RE
//! relocation and enum names) and kallsyms (addresses of functions).

use std::io;

const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
const KALLSYMS: &str = "/proc/kallsyms";

/// The raw BTF of vmlinux (CONFIG_DEBUG_INFO_BTF). The error names the file.
pub fn vmlinux_btf() -> Result<Vec<u8>, String> {
    std::fs::read(VMLINUX_BTF).map_err(|e| format!("kernel BTF ({VMLINUX_BTF}): {e}"))
}

/// The kernel's BTF, read and parsed once per process (~17 ms, tens of MB): the
/// socket-owner iterator and every tracer share it.
#[derive(Debug)]
pub struct KernelBtf {
    pub bytes: Vec<u8>,
    pub parsed: aya::Btf,
}

pub fn kernel_btf() -> Result<&'static KernelBtf, String> {
    static ONCE: std::sync::OnceLock<Result<KernelBtf, String>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let bytes = vmlinux_btf()?;
        let parsed = aya::Btf::parse(&bytes, aya::Endianness::default())
            .map_err(|e| format!("kernel BTF: {e}"))?;
        Ok(KernelBtf { bytes, parsed })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// /proc/kallsyms as text; addresses read as zeros without CAP_SYSLOG.
pub fn kallsyms() -> io::Result<String> {
    std::fs::read_to_string(KALLSYMS)
}

/// Whether the kernel publishes its BTF (what every tracer needs).
pub fn has_btf() -> bool {
    std::path::Path::new(VMLINUX_BTF).is_file()
}
