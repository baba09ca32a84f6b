//! The program in the kernel: loading it, filling its maps, attaching it over
//! rtnetlink (so it stays when netsight exits), finding it again by id, reading
//! its counters and detaching it only if it is still the one netsight attached.

use std::collections::HashMap;
use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, Map, MapData, PerCpuArray, PerCpuValues};
use aya::programs::Xdp;
use aya::EbpfLoader;
use netsight_kernel::link::{self, Link};
use serde::{Deserialize, Serialize};

use crate::compile::{Compiled, RuleEntry, Tries, MAX_RULES};
use crate::rules::{Prefix, SynLimit};
use crate::XdpError;

/// bpf/xdp_filter.bpf.c, built by scripts/build-bpf.
const OBJECT: &[u8] = include_bytes!("../bpf/xdp_filter.bpf.o");
/// The program's name as the kernel shows it (`bpftool prog`).
pub const PROGRAM_NAME: &str = "netsight_xdp";

/// struct xf_config.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Config {
    dry_run: u32,
    syn_enabled: u32,
    syn_cost_ns: u64,
    syn_burst_ns: u64,
    syn_prefix_v4: u32,
    syn_prefix_v6: u32,
}

/// struct xf_traffic.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Traffic {
    packets: u64,
    bytes: u64,
}

// SAFETY: plain #[repr(C)] integers with no padding holes the kernel could not
// fill (each layout matches its C struct in bpf/xdp_filter.bpf.c).
#[allow(unsafe_code)]
unsafe impl aya::Pod for Config {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for Traffic {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for RuleEntry {}

/// How the program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In the driver, before an sk_buff exists.
    Native,
    /// After the sk_buff is built (any interface; slower).
    Generic,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Generic => "generic",
        }
    }

    fn flag(self) -> u32 {
        match self {
            Mode::Native => link::XDP_FLAGS_DRV_MODE,
            Mode::Generic => link::XDP_FLAGS_SKB_MODE,
        }
    }

    pub fn of_link(link: &Link) -> Option<Mode> {
        match link.xdp.as_ref()?.mode.as_str() {
            "driver" => Some(Mode::Native),
            "generic" => Some(Mode::Generic),
            _ => None,
        }
    }
}

/// Global counters (the program's `totals`), summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub seen_packets: u64,
    pub passed_packets: u64,
    pub dropped_packets: u64,
    /// Drops not done because the source is protected.
    pub spared_packets: u64,
    /// Drops not done because of --dry-run.
    pub dry_run_packets: u64,
    pub syn_passed_packets: u64,
    /// SYNs over the limit (dropped, unless spared or dry run).
    pub syn_limited_packets: u64,
    pub not_ip_packets: u64,
}

/// Packets and bytes one rule matched, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RuleCounters {
    pub packets: u64,
    pub bytes: u64,
}

fn bpf_error(what: &str, e: impl std::fmt::Display) -> XdpError {
    let text = e.to_string();
    if text.contains("Operation not permitted")
        || text.contains("EPERM")
        || text.contains("permission")
    {
        XdpError::NeedCapability(format!("{what}: {text}"))
    } else {
        XdpError::Bpf(format!("{what}: {text}"))
    }
}

/// The interface named `name` in this network namespace.
pub fn find_link(name: &str) -> Result<Link, XdpError> {
    let links = link::parse_link_dump(&link::dump_links()?)?;
    links
        .into_iter()
        .find(|l| l.name == name)
        .ok_or_else(|| XdpError::UnknownInterface(name.to_string()))
}

/// The maps of a loaded filter, by name.
#[derive(Debug)]
pub struct Maps {
    maps: HashMap<String, Map>,
}

impl Maps {
    fn get(&mut self, name: &str) -> Result<&mut Map, XdpError> {
        self.maps.get_mut(name).ok_or_else(|| {
            XdpError::Bpf(format!(
                "the program has no map {name:?} (not netsight's filter?)"
            ))
        })
    }

    /// The maps of the loaded program `prog_id` (for changes after attach).
    pub fn of_program(prog_id: u32) -> Result<Maps, XdpError> {
        let info = program_info(prog_id)?;
        let ids = info
            .map_ids()
            .map_err(|e| bpf_error("reading the program's maps", e))?
            .unwrap_or_default();
        let mut maps = HashMap::new();
        for id in ids {
            let data = MapData::from_id(id).map_err(|e| bpf_error("opening a map", e))?;
            let name = data
                .info()
                .ok()
                .and_then(|i| i.name_as_str().map(str::to_string))
                .unwrap_or_default();
            if let Ok(map) = Map::from_map_data(data) {
                maps.insert(name, map);
            }
        }
        Ok(Maps { maps })
    }

    fn write_trie<const N: usize>(
        &mut self,
        name: &str,
        old: &std::collections::BTreeMap<Prefix, u64>,
        new: &std::collections::BTreeMap<Prefix, u64>,
    ) -> Result<(), XdpError> {
        let mut trie: LpmTrie<&mut MapData, [u8; N], u64> =
            LpmTrie::try_from(self.get(name)?).map_err(|e| bpf_error(name, e))?;
        let key = |p: &Prefix| -> Option<Key<[u8; N]>> {
            let bytes: [u8; N] = p.octets().try_into().ok()?;
            Some(Key::new(u32::from(p.len), bytes))
        };
        for (p, mask) in new {
            if old.get(p) != Some(mask) {
                if let Some(k) = key(p) {
                    trie.insert(&k, *mask, 0).map_err(|e| bpf_error(name, e))?;
                }
            }
        }
        for p in old.keys().filter(|p| !new.contains_key(p)) {
            if let Some(k) = key(p) {
                let _ = trie.remove(&k);
            }
        }
        Ok(())
    }

    fn write_tries(&mut self, old: &Tries, new: &Tries) -> Result<(), XdpError> {
        self.write_trie::<4>("src_v4", &old.src_v4, &new.src_v4)?;
        self.write_trie::<4>("dst_v4", &old.dst_v4, &new.dst_v4)?;
        self.write_trie::<16>("src_v6", &old.src_v6, &new.src_v6)?;
        self.write_trie::<16>("dst_v6", &old.dst_v6, &new.dst_v6)
    }

    fn write_entries(&mut self, entries: &[(usize, RuleEntry)]) -> Result<(), XdpError> {
        let mut rules: Array<&mut MapData, RuleEntry> =
            Array::try_from(self.get("rules")?).map_err(|e| bpf_error("rules", e))?;
        for (slot, e) in entries {
            rules
                .set(*slot as u32, *e, 0)
                .map_err(|e| bpf_error("rules", e))?;
        }
        Ok(())
    }

    /// Moves the maps from `old` to `new` so a packet never sees a half rule:
    /// rules that appear are written (counters zeroed) before the tries point at
    /// them; rules that go are disabled after the tries stop pointing at them.
    pub fn change_rules(&mut self, old: &Compiled, new: &Compiled) -> Result<(), XdpError> {
        let appearing: Vec<(usize, RuleEntry)> = (0..MAX_RULES)
            .filter(|&i| new.entries[i].enabled == 1 && new.entries[i] != old.entries[i])
            .map(|i| (i, new.entries[i]))
            .collect();
        for (slot, _) in appearing
            .iter()
            .filter(|(i, _)| old.entries[*i].enabled == 0)
        {
            self.zero_rule_counters(*slot)?;
        }
        self.write_entries(&appearing)?;
        self.write_tries(&old.tries, &new.tries)?;
        let going: Vec<(usize, RuleEntry)> = (0..MAX_RULES)
            .filter(|&i| new.entries[i].enabled == 0 && old.entries[i].enabled == 1)
            .map(|i| (i, RuleEntry::default()))
            .collect();
        self.write_entries(&going)
    }

    fn zero_rule_counters(&mut self, slot: usize) -> Result<(), XdpError> {
        let mut stats: PerCpuArray<&mut MapData, Traffic> =
            PerCpuArray::try_from(self.get("rule_stats")?)
                .map_err(|e| bpf_error("rule_stats", e))?;
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| bpf_error("counting CPUs", e))?;
        let zeros = PerCpuValues::try_from(vec![Traffic::default(); cpus])
            .map_err(|e| bpf_error("rule_stats", e))?;
        stats
            .set(slot as u32, zeros, 0)
            .map_err(|e| bpf_error("rule_stats", e))?;
        Ok(())
    }

    pub fn set_config(&mut self, dry_run: bool, syn: Option<&SynLimit>) -> Result<(), XdpError> {
        let mut c = Config {
            dry_run: u32::from(dry_run),
            ..Config::default()
        };
        if let Some(s) = syn {
            let cost = 1_000_000_000 / s.per_second.max(1);
            c.syn_enabled = 1;
            c.syn_cost_ns = cost.max(1);
            c.syn_burst_ns = c.syn_cost_ns.saturating_mul(s.burst.max(1));
            c.syn_prefix_v4 = u32::from(s.prefix_v4);
            c.syn_prefix_v6 = u32::from(s.prefix_v6);
        }
        let mut settings: Array<&mut MapData, Config> =
            Array::try_from(self.get("settings")?).map_err(|e| bpf_error("settings", e))?;
        settings
            .set(0, c, 0)
            .map_err(|e| bpf_error("settings", e))?;
        Ok(())
    }

    pub fn set_protected(&mut self, prefixes: &[Prefix]) -> Result<(), XdpError> {
        let one = |p: &Prefix| std::iter::once((*p, 1u64));
        let v4 = prefixes
            .iter()
            .filter(|p| p.is_v4())
            .flat_map(one)
            .collect();
        let v6 = prefixes
            .iter()
            .filter(|p| !p.is_v4())
            .flat_map(one)
            .collect();
        self.write_trie::<4>("protect_v4", &Default::default(), &v4)?;
        self.write_trie::<16>("protect_v6", &Default::default(), &v6)
    }

    pub fn rule_counters(&mut self, slot: u8) -> Result<RuleCounters, XdpError> {
        let stats: PerCpuArray<&mut MapData, Traffic> =
            PerCpuArray::try_from(self.get("rule_stats")?)
                .map_err(|e| bpf_error("rule_stats", e))?;
        let values = stats
            .get(&u32::from(slot), 0)
            .map_err(|e| bpf_error("rule_stats", e))?;
        let sum = values
            .iter()
            .fold(RuleCounters::default(), |acc, t| RuleCounters {
                packets: acc.packets + t.packets,
                bytes: acc.bytes + t.bytes,
            });
        Ok(sum)
    }

    pub fn totals(&mut self) -> Result<Totals, XdpError> {
        let totals: PerCpuArray<&mut MapData, u64> =
            PerCpuArray::try_from(self.get("totals")?).map_err(|e| bpf_error("totals", e))?;
        let get = |i: u32| -> u64 { totals.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0) };
        let t = Totals {
            seen_packets: get(0),
            passed_packets: get(1),
            dropped_packets: get(2),
            spared_packets: get(3),
            dry_run_packets: get(4),
            syn_passed_packets: get(5),
            syn_limited_packets: get(6),
            not_ip_packets: get(7),
        };
        Ok(t)
    }
}

fn program_info(prog_id: u32) -> Result<aya::programs::ProgramInfo, XdpError> {
    for info in aya::programs::loaded_programs() {
        let info = info.map_err(|e| bpf_error("listing BPF programs", e))?;
        if info.id() == prog_id {
            return Ok(info);
        }
    }
    Err(XdpError::Bpf(format!(
        "no BPF program with id {prog_id} is loaded"
    )))
}

/// The name of the loaded program `prog_id`, if there is one.
pub fn program_name(prog_id: u32) -> Option<String> {
    program_info(prog_id)
        .ok()?
        .name_as_str()
        .map(str::to_string)
}

/// A loaded, not yet attached, filter.
#[derive(Debug)]
pub struct Loaded {
    ebpf: aya::Ebpf,
    pub prog_id: u32,
    pub maps: Maps,
}

/// Loads the program and takes its maps (empty: no rule, no limit).
pub fn load() -> Result<Loaded, XdpError> {
    const LOADING: &str = "loading the XDP program (needs CAP_BPF and CAP_NET_ADMIN)";
    let mut ebpf = EbpfLoader::new()
        .load(OBJECT)
        .map_err(|e| bpf_error(LOADING, e))?;
    let prog: &mut Xdp = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or_else(|| XdpError::Bpf("the embedded object has no netsight_xdp program".into()))?
        .try_into()
        .map_err(|e| bpf_error("netsight_xdp", e))?;
    prog.load().map_err(|e| bpf_error(LOADING, e))?;
    let prog_id = prog.info().map_err(|e| bpf_error("netsight_xdp", e))?.id();
    let mut maps = HashMap::new();
    let names: Vec<String> = ebpf.maps().map(|(n, _)| n.to_string()).collect();
    for name in names {
        if let Some(map) = ebpf.take_map(&name) {
            maps.insert(name, map);
        }
    }
    Ok(Loaded {
        ebpf,
        prog_id,
        maps: Maps { maps },
    })
}

impl Loaded {
    fn program(&self) -> Result<&Xdp, XdpError> {
        self.ebpf
            .program(PROGRAM_NAME)
            .ok_or_else(|| XdpError::Bpf("netsight_xdp vanished".into()))?
            .try_into()
            .map_err(|e| bpf_error("netsight_xdp", e))
    }

    /// The program's verdict for one frame (BPF_PROG_TEST_RUN): 1 drop, 2 pass.
    /// What the tests check the C program against the rules' meaning with.
    pub fn verdict(&self, frame: &[u8]) -> Result<u32, XdpError> {
        use aya::programs::TestRun as _;
        let prog = self.program()?;
        let opts = aya::programs::TestRunOptions {
            data_in: Some(frame),
            repeat: 1,
            ..Default::default()
        };
        let result = prog
            .test_run(opts)
            .map_err(|e| bpf_error("BPF_PROG_TEST_RUN", e))?;
        Ok(result.return_value)
    }

    /// Attaches to `ifindex` in `mode`, refusing to replace any program there.
    pub fn attach(&self, ifindex: u32, mode: Mode) -> Result<(), XdpError> {
        let fd = self
            .program()?
            .fd()
            .map_err(|e| bpf_error("netsight_xdp", e))?;
        let raw = fd.as_fd().as_raw_fd();
        link::set_xdp(
            ifindex,
            raw,
            link::XDP_FLAGS_UPDATE_IF_NOEXIST | mode.flag(),
            None,
        )
        .map_err(|e| attach_error(e, mode))
    }
}

fn attach_error(e: netsight_kernel::KernelError, mode: Mode) -> XdpError {
    let text = e.to_string();
    if text.contains("Operation not permitted") {
        XdpError::NeedCapability(format!("attaching XDP: {text}"))
    } else if text.contains("File exists") || text.contains("Device or resource busy") {
        XdpError::Bpf(format!(
            "attaching XDP: another program was attached meanwhile ({text})"
        ))
    } else {
        XdpError::Bpf(format!("attaching XDP in {} mode: {text}", mode.name()))
    }
}

/// Whether an attach error means "this mode is not available here" (try generic).
pub fn mode_unsupported(e: &XdpError) -> bool {
    matches!(e, XdpError::Bpf(t) if t.contains("not supported") || t.contains("Invalid argument"))
}

/// Detaches the program `prog_id` from `ifindex`, only if it is still the one attached.
pub fn detach(ifindex: u32, prog_id: u32, mode: Mode) -> Result<(), XdpError> {
    let info = program_info(prog_id)?;
    let fd = info
        .fd()
        .map_err(|e| bpf_error("opening the attached program", e))?;
    let raw = fd.as_fd().as_raw_fd();
    link::set_xdp(ifindex, -1, mode.flag(), Some(raw)).map_err(|e| {
        let text = e.to_string();
        if text.contains("Operation not permitted") {
            XdpError::NeedCapability(format!("detaching XDP: {text}"))
        } else {
            XdpError::Bpf(format!("detaching XDP: {text}"))
        }
    })
}
