//! Helper threads that spin between bursts of work, for splitting one product or one
//! element-wise pass across the cores.
//!
//! Training a dense network alternates large GEMMs with short serial work (activations, the
//! loss, a parameter update), a few tens of microseconds each. A rayon worker that finds no
//! work yields for about that long and then sleeps, and waking it again costs about as much as
//! half a GEMM saves: measured on the 2-core machine, a 784→256 dense forward split with rayon
//! took 0.30 ms after such a gap against 0.24 ms back to back and 0.35 ms on one thread. Like
//! the OpenMP runtimes behind PyTorch, these helpers instead *spin* for [`SPIN`] after each job
//! (yielding the core to any other runnable thread) and park only when work stops for longer,
//! so handing one a part of a product costs well under a microsecond during training and
//! nothing when idle.
//!
//! There are [`threads`]` − 1` helpers: one fewer than rayon's threads (`--threads N`). [`join`] runs one closure on the calling thread and the other on a free
//! helper; if the helper has not picked its job up by the time the caller is done, the caller
//! takes it back and runs it itself, so `join` never waits for a wake-up. A `join` nested in
//! either closure takes another free helper, so a work split in `threads()` parts by halving
//! (as [`crate::gemm::par_gemm`] and [`crate::split::halves`] do) runs on every helper. When no
//! helper is free (and on one core, or a rayon pool of one thread) both closures run inline.
//!
//! The layers use it for large products; the optimizer and the data loader use it to split
//! their element-wise passes the same way, so each core updates the part of a gradient it
//! wrote.

#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long the helper spins for the next job before parking.
pub const SPIN: Duration = Duration::from_micros(500);

const PENDING: u8 = 0;
const DONE: u8 = 1;
const PANICKED: u8 = 2;

/// A type-erased `FnOnce` living on the caller's stack.
struct Job {
    call: unsafe fn(*mut ()),
    data: *mut (),
    state: AtomicU8,
}

/// Runs the `Option<F>` behind `data` once.
///
/// # Safety
/// `data` points to a live `Option<F>` that nobody else accesses during the call.
unsafe fn trampoline<F: FnOnce()>(data: *mut ()) {
    // SAFETY: guaranteed by the caller (exactly one party runs a job, see `join`).
    let f = unsafe { &mut *data.cast::<Option<F>>() }.take();
    if let Some(f) = f {
        f();
    }
}

/// One helper thread and its job slot.
struct Helper {
    slot: AtomicPtr<Job>,
    thread: Thread,
    /// Held by the `join` that uses this helper.
    caller: Mutex<()>,
}

/// The helper's loop: take a job, run it, spin for the next, park when idle.
fn serve(helper: &'static Helper) {
    let mut idle_since = Instant::now();
    let mut spins: u32 = 0;
    loop {
        let job = helper.slot.swap(std::ptr::null_mut(), Ordering::Acquire);
        if !job.is_null() {
            // SAFETY: a job in the slot stays alive until its state says DONE or PANICKED
            // (its caller waits for that), and taking it from the slot makes us its only runner.
            let job = unsafe { &*job };
            let ran = catch_unwind(AssertUnwindSafe(|| unsafe { (job.call)(job.data) }));
            job.state
                .store(if ran.is_ok() { DONE } else { PANICKED }, Ordering::Release);
            idle_since = Instant::now();
            continue;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) {
            if idle_since.elapsed() > SPIN {
                thread::park();
                idle_since = Instant::now();
            } else {
                // let any other runnable thread (a rayon worker) have the core
                thread::yield_now();
            }
        } else {
            std::hint::spin_loop();
        }
    }
}

static TEAM: OnceLock<Vec<&'static Helper>> = OnceLock::new();

/// The helpers, started on first use: one fewer than rayon's threads — the threads the user
/// asked for (`--threads N`, `RAYON_NUM_THREADS`), by default the cores — and none on one core
/// or when rayon has one thread.
fn team() -> &'static [&'static Helper] {
    TEAM.get_or_init(|| {
        let cores = thread::available_parallelism().map_or(1, usize::from);
        let wanted = if cores < 2 {
            0
        } else {
            rayon::current_num_threads().saturating_sub(1)
        };
        (0..wanted).map_while(start_helper).collect()
    })
}

/// Starts helper `k`; `None` if the thread cannot be spawned (the team is then smaller).
fn start_helper(k: usize) -> Option<&'static Helper> {
    // the helper needs `&'static Helper`: helpers are created once and never freed
    let (tx, rx) = std::sync::mpsc::channel::<&'static Helper>();
    let handle = thread::Builder::new()
        .name(format!("retroprop-helper-{k}"))
        .spawn(move || {
            if let Ok(helper) = rx.recv() {
                serve(helper);
            }
        })
        .ok()?;
    let helper: &'static Helper = Box::leak(Box::new(Helper {
        slot: AtomicPtr::new(std::ptr::null_mut()),
        thread: handle.thread().clone(),
        caller: Mutex::new(()),
    }));
    tx.send(helper).ok()?;
    Some(helper)
}

/// The threads a split can use: the calling thread and the helpers (at least 1).
///
/// ```
/// assert!(retroprop_core::team::threads() >= 1);
/// ```
pub fn threads() -> usize {
    team().len() + 1
}

/// Runs `a` here and `b` on a free helper thread (or here, if every helper is busy or the
/// chosen one is slow to start), returning when both are done. Panics in either are propagated
/// after both finished.
pub fn join<A: FnOnce(), B: FnOnce() + Send>(a: A, b: B) {
    // the first helper no other `join` holds
    let free = team()
        .iter()
        .find_map(|helper| Some((*helper, helper.caller.try_lock().ok()?)));
    let Some((team, _guard)) = free else {
        a();
        b();
        return;
    };
    let mut b = Some(b);
    let job = Job {
        call: trampoline::<B>,
        data: (&raw mut b).cast(),
        state: AtomicU8::new(PENDING),
    };
    let job_ptr = (&raw const job).cast_mut();
    team.slot.store(job_ptr, Ordering::Release);
    team.thread.unpark();
    let ran_a = catch_unwind(AssertUnwindSafe(a));
    let stolen = team
        .slot
        .compare_exchange(
            job_ptr,
            std::ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok();
    if stolen {
        // the helper never saw the job: run it here
        // SAFETY: the job left the slot before the helper took it, so we are its only runner,
        // and `b` is alive on this frame.
        unsafe { trampoline::<B>(job.data) };
    } else {
        while job.state.load(Ordering::Acquire) == PENDING {
            std::hint::spin_loop();
        }
        if job.state.load(Ordering::Acquire) == PANICKED {
            panic!("a task on a helper thread panicked");
        }
    }
    if let Err(payload) = ran_a {
        resume_unwind(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_run_exactly_once() {
        for _ in 0..1000 {
            let (mut x, mut y) = (0, 0);
            join(|| x += 1, || y += 1);
            assert_eq!((x, y), (1, 1));
        }
    }

    #[test]
    fn nested_joins_run_every_part_once() {
        // four parts by halving, as par_gemm and split::halves cut work for four threads
        for _ in 0..500 {
            let mut parts = [0u8; 4];
            let (left, right) = parts.split_at_mut(2);
            join(
                || {
                    let (a, b) = left.split_at_mut(1);
                    join(|| a[0] += 1, || b[0] += 1);
                },
                || {
                    let (a, b) = right.split_at_mut(1);
                    join(|| a[0] += 1, || b[0] += 1);
                },
            );
            assert_eq!(parts, [1; 4]);
        }
        assert!(threads() >= 1 && threads() <= rayon::current_num_threads().max(1));
    }

    #[test]
    fn concurrent_callers_all_complete() {
        let total = std::sync::atomic::AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..500 {
                        join(
                            || {
                                total.fetch_add(1, Ordering::Relaxed);
                            },
                            || {
                                total.fetch_add(1, Ordering::Relaxed);
                            },
                        );
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4000);
    }
}
