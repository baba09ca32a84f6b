//! tcpdump filter expressions → classic BPF, compiled by the system's libpcap (`pcap_compile`
//! on a dead handle). libpcap is loaded at run time with dlopen, so building netsight needs no
//! libpcap headers and `cargo build` stays Rust + a C compiler; capturing without a filter needs
//! no libpcap at all.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

/// One classic BPF instruction (`struct sock_filter` / `struct bpf_insn`, the same layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct BpfInstruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("filter expressions need libpcap at run time ({tried}); install it (apt install libpcap0.8, which tcpdump also uses) or capture without a filter")]
    LibpcapMissing { tried: String },
    #[error("libpcap {0} lacks symbol {1}")]
    MissingSymbol(String, &'static str),
    #[error("filter {expression:?}: {message}")]
    Syntax { expression: String, message: String },
}

/// Sonames tried in order: Debian's runtime package first, then the development link.
const LIBPCAP_NAMES: [&str; 3] = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];
const PCAP_NETMASK_UNKNOWN: c_uint = 0xffff_ffff;

#[repr(C)]
struct BpfProgram {
    len: c_uint,
    insns: *mut BpfInstruction,
}

type OpenDead = unsafe extern "C" fn(c_int, c_int) -> *mut c_void;
type Compile =
    unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, c_uint) -> c_int;
type FreeCode = unsafe extern "C" fn(*mut BpfProgram);
type GetErr = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type Close = unsafe extern "C" fn(*mut c_void);

/// Compiles `expression` for frames of link type `linktype` (LINKTYPE_* values; libpcap maps
/// them to its DLT_*), optimised, as tcpdump does.
#[allow(unsafe_code)]
pub fn compile(
    expression: &str,
    linktype: u32,
    snaplen: u32,
) -> Result<Vec<BpfInstruction>, FilterError> {
    let expr = CString::new(expression).map_err(|_| FilterError::Syntax {
        expression: expression.to_string(),
        message: "contains a NUL byte".into(),
    })?;
    let (lib, name) = open_libpcap()?;
    let sym = |s: &'static str| -> Result<*mut c_void, FilterError> {
        let c = CString::new(s).map_err(|_| FilterError::MissingSymbol(name.to_string(), s))?;
        // SAFETY: `lib` is a live dlopen handle and `c` a NUL-terminated symbol name.
        let p = unsafe { libc::dlsym(lib, c.as_ptr()) };
        if p.is_null() {
            Err(FilterError::MissingSymbol(name.to_string(), s))
        } else {
            Ok(p)
        }
    };
    let dlt = linktype_to_dlt(linktype);
    // SAFETY: each pointer came from dlsym on libpcap for the named function, whose C prototype
    // is the type it is transmuted to (pcap/pcap.h).
    let (open_dead, compile, freecode, geterr, close) = unsafe {
        (
            std::mem::transmute::<*mut c_void, OpenDead>(sym("pcap_open_dead")?),
            std::mem::transmute::<*mut c_void, Compile>(sym("pcap_compile")?),
            std::mem::transmute::<*mut c_void, FreeCode>(sym("pcap_freecode")?),
            std::mem::transmute::<*mut c_void, GetErr>(sym("pcap_geterr")?),
            std::mem::transmute::<*mut c_void, Close>(sym("pcap_close")?),
        )
    };
    // SAFETY: libpcap's documented use: open a dead handle, compile into a program we own,
    // copy the instructions out, free the program and close the handle; libpcap keeps the
    // error string alive until the handle is closed, and we copy it before that.
    unsafe {
        let handle = open_dead(dlt as c_int, snaplen as c_int);
        if handle.is_null() {
            return Err(FilterError::Syntax {
                expression: expression.to_string(),
                message: format!("libpcap cannot compile for link type {linktype}"),
            });
        }
        let mut program = BpfProgram {
            len: 0,
            insns: std::ptr::null_mut(),
        };
        let rc = compile(handle, &mut program, expr.as_ptr(), 1, PCAP_NETMASK_UNKNOWN);
        let result = if rc != 0 {
            let msg = CStr::from_ptr(geterr(handle))
                .to_string_lossy()
                .into_owned();
            Err(FilterError::Syntax {
                expression: expression.to_string(),
                message: msg,
            })
        } else {
            let insns = std::slice::from_raw_parts(program.insns, program.len as usize).to_vec();
            freecode(&mut program);
            Ok(insns)
        };
        close(handle);
        result
    }
}

/// The libpcap this process can load for filters, if any (for `--version`).
pub fn libpcap_found() -> Option<&'static str> {
    open_libpcap().ok().map(|(_, name)| name)
}

#[allow(unsafe_code)]
fn open_libpcap() -> Result<(*mut c_void, &'static str), FilterError> {
    for name in LIBPCAP_NAMES {
        let c =
            CString::new(name).map_err(|_| FilterError::LibpcapMissing { tried: name.into() })?;
        // SAFETY: dlopen with a NUL-terminated name; the handle is never closed (libpcap stays
        // loaded for the life of the process, like a linked library).
        let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if !handle.is_null() {
            return Ok((handle, name));
        }
    }
    Err(FilterError::LibpcapMissing {
        tried: LIBPCAP_NAMES.join(", "),
    })
}

/// LINKTYPE_* → the DLT_* value pcap_open_dead expects (they differ only for raw IP).
fn linktype_to_dlt(linktype: u32) -> u32 {
    match linktype {
        crate::dissect::linktype::RAW => 12, // DLT_RAW on Linux
        other => other,
    }
}

/// Parses tcpdump's `-ddd` output (count, then "code jt jf k" lines): the oracle in tests.
pub fn parse_ddd(text: &str) -> Option<Vec<BpfInstruction>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let count: usize = lines.next()?.trim().parse().ok()?;
    let insns: Option<Vec<_>> = lines
        .map(|l| {
            let mut it = l.split_whitespace().map(|x| x.parse::<u64>().ok());
            Some(BpfInstruction {
                code: it.next()?? as u16,
                jt: it.next()?? as u8,
                jf: it.next()?? as u8,
                k: it.next()?? as u32,
            })
        })
        .collect();
    insns.filter(|v| v.len() == count)
}
