//! The SIGBUS guard of mapped files.
//!
//! Reading a page of a mapping that lies wholly past the end of its file raises SIGBUS,
//! which kills the process. Files shrink under readers: a live ZODB truncates `Data.fs`
//! when a commit aborts after its vote, and an operator may truncate a file by mistake.
//! Each [`crate::Map`] registers its address range here. When SIGBUS hits an address inside
//! a registered range, the handler maps a page of zeros over the faulting page (the read
//! then completes and yields zeros), marks the range as hit and returns; the owner of the
//! map reports the shrink as an error before using anything it read
//! ([`crate::Map::check_intact`]). A SIGBUS anywhere else is handed to the handler that was
//! installed before ours (or the default action), as if we had never been there.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

const SLOTS: usize = 256;

struct Slot {
    used: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    hit: AtomicBool,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            used: AtomicBool::new(false),
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            hit: AtomicBool::new(false),
        }
    }
}

static REGIONS: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

/// Guards `start..start + len`; `None` when every slot is taken (the range then stays
/// unguarded, as plain mappings are).
pub(crate) fn register(start: usize, len: usize) -> Option<usize> {
    install();
    let end = start.checked_add(len)?;
    for (i, s) in REGIONS.iter().enumerate() {
        if s.used
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            s.hit.store(false, Ordering::Release);
            s.end.store(end, Ordering::Release);
            s.start.store(start, Ordering::Release);
            return Some(i);
        }
    }
    None
}

/// Stops guarding the range of `slot` (before it is unmapped).
pub(crate) fn unregister(slot: usize) {
    let s = &REGIONS[slot];
    s.start.store(0, Ordering::Release);
    s.end.store(0, Ordering::Release);
    s.used.store(false, Ordering::Release);
}

/// Whether a read in the range of `slot` found its page gone.
pub(crate) fn was_hit(slot: usize) -> bool {
    REGIONS[slot].hit.load(Ordering::Acquire)
}

/// Whether the guarded range holding `addr` (if any) was hit.
pub(crate) fn hit_at(addr: usize) -> bool {
    REGIONS.iter().any(|s| {
        let start = s.start.load(Ordering::Acquire);
        start != 0
            && addr >= start
            && addr < s.end.load(Ordering::Acquire)
            && s.hit.load(Ordering::Acquire)
    })
}

/// Whether `start..end` lies inside one guarded range.
pub(crate) fn is_guarded(start: usize, end: usize) -> bool {
    REGIONS.iter().any(|s| {
        let a = s.start.load(Ordering::Acquire);
        a != 0 && start >= a && end <= s.end.load(Ordering::Acquire)
    })
}

fn install() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        #[allow(unsafe_code)]
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(p) = usize::try_from(page) {
            if p.is_power_of_two() {
                PAGE.store(p, Ordering::Relaxed);
            }
        }
        // SAFETY: a zeroed sigaction is a valid value to fill in; the handler is an
        // `extern "C"` function of the SA_SIGINFO shape, and `old` receives the previous
        // action so that faults that are not ours reach it.
        #[allow(unsafe_code)]
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut act.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &act, &mut old) == 0 {
                Some(old)
            } else {
                None
            }
        }
    });
}

extern "C" fn handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; si_addr is the
    // faulting address for SIGBUS.
    #[allow(unsafe_code)]
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for s in &REGIONS {
        let start = s.start.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= s.end.load(Ordering::Acquire) {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: `at` is a page inside a read-only mapping this process owns (registered
        // by a live `Map`); replacing it with a private anonymous page of zeros changes
        // only what later reads of that page see. mmap is a plain system call.
        #[allow(unsafe_code)]
        let r = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r != libc::MAP_FAILED {
            s.hit.store(true, Ordering::Release);
            return;
        }
    }
    // Not ours: put the previous action back; returning repeats the fault, which then
    // reaches it (or the default action, which ends the process).
    // SAFETY: sigaction with a value the kernel gave us, or the default disposition.
    #[allow(unsafe_code)]
    unsafe {
        match PREVIOUS.get() {
            Some(Some(old)) => {
                libc::sigaction(libc::SIGBUS, old, std::ptr::null_mut());
            }
            _ => {
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
            }
        }
    }
}
