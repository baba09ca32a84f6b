//! The running kernel's descriptions of itself: its BTF (types, for CO-RE
//! relocation and enum names) and kallsyms (addresses of functions).

use std::io;

const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
const KALLSYMS: &str = "/proc/kallsyms";

/// The raw BTF of vmlinux (CONFIG_DEBUG_INFO_BTF). The error names the file.
pub fn vmlinux_btf() -> Result<Vec<u8>, String> {
    std::fs::read(VMLINUX_BTF).map_err(|e| format!("kernel BTF ({VMLINUX_BTF}): {e}"))
}

/// /proc/kallsyms as text; addresses read as zeros without CAP_SYSLOG.
pub fn kallsyms() -> io::Result<String> {
    std::fs::read_to_string(KALLSYMS)
}

/// Whether the kernel publishes its BTF (what every tracer needs).
pub fn has_btf() -> bool {
    std::path::Path::new(VMLINUX_BTF).is_file()
}
