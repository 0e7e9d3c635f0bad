//! Tracing: human-readable by default, JSON with a setting. Each request
//! runs in a span naming its tenant (see `tenancy::layer`).
use std::{
    io::{IsTerminal, Write},
    sync::{Arc, Condvar, Mutex},
    thread::JoinHandle,
    time::Duration,
};

use tracing_subscriber::{fmt, fmt::MakeWriter, EnvFilter};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sea_orm_migration=warn";

/// `RUST_LOG` (or the default), with SeaORM and sqlx capped at `warn`
/// whatever it says: their trace-level spans record connection options,
/// database URLs and passwords included.
pub fn filter(directives: Option<&str>) -> EnvFilter {
    let base = directives
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    base.add_directive("sea_orm=warn".parse().expect("valid directive"))
        .add_directive("sqlx=warn".parse().expect("valid directive"))
}

/// Installs the global subscriber once; later calls (tests build many
/// apps) are no-ops and return `None`. Lines go to stdout through a
/// [`Batched`] writer. Keep the guard until exit: dropping it writes what
/// is left.
pub fn init(format: LogFormat) -> Option<LogGuard> {
    let env = std::env::var("RUST_LOG").ok();
    let stdout = std::io::stdout();
    let ansi = stdout.is_terminal();
    let (writer, guard) = Batched::spawn(stdout, FLUSH_EVERY);
    let builder = fmt()
        .with_env_filter(filter(env.as_deref()))
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.ok().map(|()| guard)
}

/// How long a line may wait in [`Batched`]'s buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer this full is written at once, without waiting for the period.
const WRITE_SOON: usize = 64 * 1024;
/// A buffer this full makes loggers wait for the writer: memory stays
/// bounded when the output is slower than the logging, and nothing is lost.
const WAIT_ABOVE: usize = 4 * 1024 * 1024;

/// A log writer for many lines a second. Threads append each formatted
/// line to a shared buffer, which one thread (`enclave-log`) writes out
/// every [`FLUSH_EVERY`], or as soon as it holds [`WRITE_SOON`] bytes. A
/// request pays a copy under a lock: no system call, and no wake-up of
/// another thread. A writer fed a channel line by line (tracing-appender's,
/// used before) was woken for nearly every line: at 17,000 requests a
/// second on two cores, its thread and the wake-ups took 7 % of the
/// machine.
pub struct Batched(Arc<Shared>);

struct Shared {
    state: Mutex<State>,
    /// The writer thread waits here for a full buffer or the period.
    full: Condvar,
    /// Loggers wait here while the buffer is above [`WAIT_ABOVE`].
    room: Condvar,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    closed: bool,
}

/// Stops the writer thread when dropped, once it has written every line.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Batched {
    /// Starts the thread that writes to `out` every `period`.
    pub fn spawn<W: Write + Send + 'static>(mut out: W, period: Duration) -> (Self, LogGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            full: Condvar::new(),
            room: Condvar::new(),
        });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("enclave-log".into())
            .spawn(move || {
                let shared = for_thread;
                let mut batch = Vec::new();
                loop {
                    let closed = {
                        let mut state = shared.state.lock().unwrap();
                        if state.lines.len() < WRITE_SOON && !state.closed {
                            state = shared.full.wait_timeout(state, period).unwrap().0;
                        }
                        std::mem::swap(&mut batch, &mut state.lines);
                        shared.room.notify_all();
                        state.closed
                    };
                    if !batch.is_empty() {
                        // Nowhere to report a failing stdout; the lines go.
                        let _ = out.write_all(&batch).and_then(|()| out.flush());
                        batch.clear();
                    }
                    if closed {
                        break;
                    }
                }
            })
            .expect("the log thread starts");
        let guard = LogGuard {
            shared: shared.clone(),
            thread: Some(thread),
        };
        (Self(shared), guard)
    }
}

impl Write for &Batched {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = &self.0;
        let mut state = shared.state.lock().unwrap();
        while state.lines.len() >= WAIT_ABOVE && !state.closed {
            state = shared.room.wait(state).unwrap();
        }
        let before = state.lines.len();
        state.lines.extend_from_slice(line);
        // Once, as the buffer fills: a notification is a system call, and
        // the thread finds a full buffer without one when it looks next.
        if before < WRITE_SOON && state.lines.len() >= WRITE_SOON {
            shared.full.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = &'a Batched;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.state.lock().unwrap().closed = true;
        self.shared.full.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
        time::{Duration, Instant},
    };

    use super::Batched;

    /// What the writer thread wrote, readable by the test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_of_every_thread_is_written_in_its_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        // A period far longer than the test: only size and the guard write.
        let (writer, guard) = Batched::spawn(sink.clone(), Duration::from_secs(3600));
        std::thread::scope(|s| {
            for t in 0..4 {
                let writer = &writer;
                s.spawn(move || {
                    for i in 0..20_000 {
                        (&*writer)
                            .write_all(format!("t{t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                });
            }
        });
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("t{t} line ")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..20_000).collect::<Vec<_>>(), "thread {t}");
        }
        assert_eq!(text.lines().count(), 80_000);
    }

    #[test]
    fn a_lone_line_is_written_within_the_period() {
        let sink = Sink::default();
        let (writer, _guard) = Batched::spawn(sink.clone(), Duration::from_millis(20));
        (&writer).write_all(b"hello\n").unwrap();
        let started = Instant::now();
        while sink.0.lock().unwrap().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the line was not written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"hello\n");
    }
}
