//! Loading a tp_btf program with its ring buffer, and polling the buffer.

use std::time::{Duration, Instant};

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};

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

/// Loads `object`, attaches program `program` to tracepoint `tracepoint` (tp_btf).
pub fn attach_tp_btf(
    object: &[u8],
    program: &str,
    tracepoint: &str,
) -> Result<Attached, TraceError> {
    attach_tp_btf_with(object, program, tracepoint, &[])
}

/// Like `attach_tp_btf`, setting u8 `volatile const` globals of the program first.
pub fn attach_tp_btf_with(
    object: &[u8],
    program: &str,
    tracepoint: &str,
    globals: &[(&str, u8)],
) -> Result<Attached, TraceError> {
    let btf = Btf::from_sys_fs().map_err(|e| TraceError::NoBtf(e.to_string()))?;
    let mut loader = EbpfLoader::new();
    loader.btf(Some(&btf));
    for (name, value) in globals {
        loader.override_global(name, value, true);
    }
    let mut ebpf = loader
        .load(object)
        .map_err(|e| TraceError::bpf(&format!("loading the {program} object"), e))?;
    let prog: &mut BtfTracePoint = ebpf
        .program_mut(program)
        .ok_or_else(|| TraceError::Bpf {
            what: program.into(),
            detail: "not in the object".into(),
        })?
        .try_into()
        .map_err(|e| TraceError::bpf(program, e))?;
    prog.load(tracepoint, &btf)
        .map_err(|e| TraceError::bpf(&format!("loading tp_btf/{tracepoint}"), e))?;
    prog.attach()
        .map_err(|e| TraceError::bpf(&format!("attaching tp_btf/{tracepoint}"), e))?;
    let map = ebpf.take_map("events").ok_or_else(|| TraceError::Bpf {
        what: program.into(),
        detail: "no events map".into(),
    })?;
    let ring = RingBuf::try_from(map).map_err(|e| TraceError::bpf("events ring buffer", e))?;
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
