//! Work that must not delay the streams runs at a lower priority.
//!
//! Under a flood of REST calls or webhooks the CPU is saturated, and tokio
//! has no task priorities: a stream's next delta would queue behind hundreds
//! of REST handlers (measured: a 50-delta stream's first delta went from
//! 0.3 ms idle to 5-9 ms median while 100 clients posted messages, even with
//! the clients themselves at nice +19). So REST handlers and webhook
//! deliveries run on a second runtime whose threads have nice +10 (Linux
//! gives each thread its own nice value, and raising it needs no privilege):
//! when both want the CPU, the kernel gives it to the realtime runtime
//! (socket.io, scripted streams) about nine times in ten. When the realtime
//! side is idle, background work gets the whole machine as before. The nice
//! value is `--rest-nice` (0 turns the demotion off).
//!
//! Scripted replies are always spawned on the realtime runtime, whoever
//! started them (see [`crate::core::Core::realtime`]). A plugin's streamed reply
//! arrives as REST calls, so its chunks are relayed at REST priority.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use tokio::runtime::Runtime;

/// The nice value of background threads (`--rest-nice`); 0 keeps them at
/// the streams' priority.
static BACKGROUND_NICE: AtomicI32 = AtomicI32::new(10);

/// Sets the nice value (0-19) background threads take when they start: call
/// it before the first REST request or webhook (the threads start then).
pub fn set_background_nice(nice: i32) {
    BACKGROUND_NICE.store(nice.clamp(0, 19), Ordering::Relaxed);
}

/// The background runtime: one per process, never dropped, so an app can be
/// built and dropped inside any async context (each test's runtime included).
pub fn background() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("proteus-background")
            .on_thread_start(lower_this_threads_priority)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the background runtime: {e}"))
    })
}

/// The background nice value (+10 unless set) for the calling thread; a
/// no-op off Linux.
fn lower_this_threads_priority() {
    let nice = BACKGROUND_NICE.load(Ordering::Relaxed);
    #[cfg(target_os = "linux")]
    if nice > 0 {
        // SAFETY: setpriority only reads its integer arguments; `who = 0` is
        // the calling thread.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, nice);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
