//! Loading a tp_btf program with its ring buffer, and polling the buffer.

use std::time::{Duration, Instant};

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Ebpf, EbpfLoader};

use crate::TraceError;

/// A loaded, attached program and its `events` ring buffer. Dropping it
/// detaches and unloads everything.
pub struct Attached {
    pub ring: RingBuf<MapData>,
    ebpf: Ebpf,
}

impl Attached {
    /// A map of the loaded object, e.g. an in-kernel histogram.
    pub fn map(&self, name: &str) -> Option<&aya::maps::Map> {
        self.ebpf.map(name)
    }

    /// Events the program could not queue because the ring buffer was full
    /// (the `lost` per-CPU counter of bpf/common.h, summed).
    pub fn lost_events(&self) -> u64 {
        let Some(map) = self.ebpf.map("lost") else {
            return 0;
        };
        let Ok(counts) = PerCpuArray::<_, u64>::try_from(map) else {
            return 0;
        };
        counts
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached").finish_non_exhaustive()
    }
}

/// A `volatile const` global of a program, set before loading.
#[derive(Debug, Clone, Copy)]
pub enum Global {
    U8(u8),
    U16(u16),
    U32(u32),
}

/// The namespace tracers keep to: inside a child network namespace, only its
/// own events (filtered in the kernel); on the host, every namespace's.
pub fn target_netns() -> u32 {
    if netsight_kernel::netns::in_child() {
        netsight_kernel::netns::self_inode().unwrap_or(0)
    } else {
        0
    }
}

/// Loads `object` and attaches each (program, tp_btf tracepoint) pair; they share
/// the object's `events` ring. `target_netns` is always set (see common.h).
pub fn attach(
    object: &[u8],
    programs: &[(&str, &str)],
    globals: &[(&str, Global)],
) -> Result<Attached, TraceError> {
    attach_with(kernel_btf()?, object, programs, globals)
}

/// The kernel's BTF, parsed once per process (shared with the socket-owner scan).
pub use netsight_kernel::kernel_image::KernelBtf;

/// The process's parsed kernel BTF.
pub fn kernel_btf() -> Result<&'static KernelBtf, TraceError> {
    netsight_kernel::kernel_image::kernel_btf().map_err(TraceError::NoBtf)
}

/// `attach` with BTF already loaded.
pub fn attach_with(
    kernel_btf: &KernelBtf,
    object: &[u8],
    programs: &[(&str, &str)],
    globals: &[(&str, Global)],
) -> Result<Attached, TraceError> {
    let btf = &kernel_btf.parsed;
    let mut loader = EbpfLoader::new();
    loader.btf(Some(btf));
    let netns = target_netns();
    loader.override_global("target_netns", &netns, true);
    for (name, value) in globals {
        match value {
            Global::U8(v) => loader.override_global(name, v, true),
            Global::U16(v) => loader.override_global(name, v, true),
            Global::U32(v) => loader.override_global(name, v, true),
        };
    }
    let first = programs.first().map_or("?", |p| p.0);
    let mut ebpf = loader
        .load(object)
        .map_err(|e| TraceError::bpf(&format!("loading the {first} object"), e))?;
    for (program, tracepoint) in programs {
        let prog: &mut BtfTracePoint = ebpf
            .program_mut(program)
            .ok_or_else(|| TraceError::Bpf {
                what: (*program).into(),
                detail: "not in the object".into(),
            })?
            .try_into()
            .map_err(|e| TraceError::bpf(program, e))?;
        prog.load(tracepoint, btf)
            .map_err(|e| TraceError::bpf(&format!("loading tp_btf/{tracepoint}"), e))?;
        prog.attach()
            .map_err(|e| TraceError::bpf(&format!("attaching tp_btf/{tracepoint}"), e))?;
    }
    let map = ebpf.take_map("events").ok_or_else(|| TraceError::Bpf {
        what: first.into(),
        detail: "no events map".into(),
    })?;
    let ring = RingBuf::try_from(map).map_err(|e| TraceError::bpf("events ring buffer", e))?;
    let names: Vec<&str> = programs.iter().map(|p| p.1).collect();
    crate::attached(&names.join(", "));
    Ok(Attached { ring, ebpf })
}

/// Calls `on_record` for every record until `duration` has passed. Records wait
/// in shared memory between polls, so a 20 ms poll loses nothing.
pub fn poll(attached: &mut Attached, duration: Duration, mut on_record: impl FnMut(&[u8])) -> f64 {
    let started = Instant::now();
    loop {
        while let Some(item) = attached.ring.next() {
            on_record(&item);
        }
        let left = duration.saturating_sub(started.elapsed());
        if left.is_zero() || crate::stop_requested() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20).min(left));
    }
    while let Some(item) = attached.ring.next() {
        on_record(&item);
    }
    started.elapsed().as_secs_f64()
}
