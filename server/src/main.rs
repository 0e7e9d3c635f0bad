//! The `server` binary: parses the command line and hands over to `server::cli`.
use clap::Parser;

/// Rust's allocations go to mimalloc: a one-query request makes some 80
/// small allocations, often freed on the other worker thread, and glibc's
/// malloc and free were 7 % of all CPU at 10 companies (`perf record -a`);
/// with mimalloc the 10-company row serves 6 % more (docs/benchmarks.md,
/// 2026-11-28, evening). SQLite's C code still allocates from glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    return_large_blocks_to_the_system();
    lean_sqlite_connections();
    // A missing .env is normal; a malformed one is reported by clap below
    // only if it leaves a required setting unset.
    let _ = dotenvy::dotenv();
    let cli = server::cli::Cli::parse();
    server::cli::run(cli)
}

/// For what still allocates from glibc (SQLite's C code): glibc raises
/// its mmap threshold each time a large block is freed, up to 32 MiB, after
/// which such blocks come from a thread's heap arena and stay there. When
/// password hashes came from glibc, that was 660 MiB of RSS after 50
/// company creations four at a time (19 MiB a hash); they come from
/// mimalloc now. A fixed threshold of 1 MiB keeps large blocks in their
/// own mappings, returned to the system when freed.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a glibc tunable; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Each SQLite connection allocates, by default, 120 KiB of lookaside
/// memory and a first block of page cache when it opens, and keeps both
/// while open: with one connection per open company that was some 40 KiB
/// of RSS per company (5,000 connections, `make bench-sqlite-drivers`:
/// 101 KiB each before, 60 after), at no measurable cost per query. Must
/// run before SQLite is first used; the registry's connections get it too.
fn lean_sqlite_connections() {
    use libsqlite3_sys::{
        sqlite3_config, SQLITE_CONFIG_LOOKASIDE, SQLITE_CONFIG_PAGECACHE, SQLITE_OK,
    };
    use std::ffi::{c_int, c_void};
    // SAFETY: sqlite3_config before sqlite3_initialize (nothing has opened
    // a database yet), with the argument types each option documents:
    // LOOKASIDE (int size, int count), PAGECACHE (void *buffer, int size,
    // int count), where a null buffer with count 0 means no first block.
    let (lookaside, pagecache) = unsafe {
        (
            sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0 as c_int, 0 as c_int),
            sqlite3_config(
                SQLITE_CONFIG_PAGECACHE,
                std::ptr::null_mut::<c_void>(),
                0 as c_int,
                0 as c_int,
            ),
        )
    };
    if lookaside != SQLITE_OK || pagecache != SQLITE_OK {
        eprintln!(
            "warning: cannot configure SQLite's per-connection memory ({lookaside}, {pagecache})"
        );
    }
}
