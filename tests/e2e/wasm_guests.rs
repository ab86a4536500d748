//! WASI guests for the WASM task tests, written in WAT so that no wasm
//! toolchain is needed: each is compiled to a binary module by the `wat`
//! crate, and [`component`] wraps a preview 1 module into a preview 2
//! command component with the preview 1 adapter.

/// Imports every guest below may use (unused imports are harmless).
const IMPORTS: &str = r#"
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
"#;

/// Helpers: `$strlen`, `$write` (to an fd), `$arg` (the address of
/// argv[i], after `$load_args`). Memory layout: 0..16 scratch, 100..116
/// iovecs, 1024.. argv pointers, 4096.. argv bytes, 16384.. data.
const HELPERS: &str = r#"
  (memory (export "memory") 1)
  (data (i32.const 16) "denied ")
  (data (i32.const 32) "ALLOWED ")
  (data (i32.const 48) "\n")
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n))
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 100) (local.get $ptr))
    (i32.store (i32.const 104) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 100) (i32.const 1) (i32.const 108)))
  (func $load_args (result i32)
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (i32.load (i32.const 0)))
  (func $arg (param $i i32) (result i32)
    (i32.load (i32.add (i32.const 1024) (i32.mul (local.get $i) (i32.const 4)))))
"#;

fn module(body: &str) -> Vec<u8> {
    wat::parse_str(format!("(module {IMPORTS} {HELPERS} {body})")).expect("valid WAT")
}

/// `writer FILE TEXT`: creates or truncates FILE (relative to the
/// worktree) and writes TEXT and a newline; exit 1 if FILE cannot be opened.
pub fn writer() -> Vec<u8> {
    module(
        r#"
  (func (export "_start") (local $path i32) (local $text i32)
    (if (i32.lt_u (call $load_args) (i32.const 3)) (then (call $proc_exit (i32.const 2))))
    (local.set $path (call $arg (i32.const 1)))
    (local.set $text (call $arg (i32.const 2)))
    ;; O_CREAT | O_TRUNC, every right; the new fd lands at address 8.
    (if (call $path_open (i32.const 3) (i32.const 0) (local.get $path) (call $strlen (local.get $path))
          (i32.const 9) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 8))
      (then (call $proc_exit (i32.const 1))))
    (drop (call $write (i32.load (i32.const 8)) (local.get $text) (call $strlen (local.get $text))))
    (drop (call $write (i32.load (i32.const 8)) (i32.const 48) (i32.const 1))))
"#,
    )
}

/// `probe PATH...`: tries to open (creating if missing) every PATH from the
/// worktree, following symlinks, and prints `denied PATH` or `ALLOWED PATH`
/// for each.
pub fn probe() -> Vec<u8> {
    module(
        r#"
  (func (export "_start") (local $argc i32) (local $i i32) (local $path i32) (local $len i32)
    (local.set $argc (call $load_args))
    (local.set $i (i32.const 1))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $argc)))
      (local.set $path (call $arg (local.get $i)))
      (local.set $len (call $strlen (local.get $path)))
      (if (call $path_open (i32.const 3) (i32.const 1) (local.get $path) (local.get $len)
            (i32.const 1) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 8))
        (then (drop (call $write (i32.const 1) (i32.const 16) (i32.const 7))))
        (else (drop (call $write (i32.const 1) (i32.const 32) (i32.const 8)))))
      (drop (call $write (i32.const 1) (local.get $path) (local.get $len)))
      (drop (call $write (i32.const 1) (i32.const 48) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
"#,
    )
}

/// `symlink TARGET LINK`: creates LINK in the worktree pointing at TARGET;
/// exits with WASI's errno when that is refused.
pub fn symlink() -> Vec<u8> {
    module(
        r#"
  (func (export "_start") (local $target i32) (local $link i32)
    (if (i32.lt_u (call $load_args) (i32.const 3)) (then (call $proc_exit (i32.const 100))))
    (local.set $target (call $arg (i32.const 1)))
    (local.set $link (call $arg (i32.const 2)))
    (call $proc_exit (call $path_symlink (local.get $target) (call $strlen (local.get $target))
      (i32.const 3) (local.get $link) (call $strlen (local.get $link)))))
"#,
    )
}

/// `readonly PATH...`: for each PATH under the first extra preopen (fd 4,
/// the plan's first `read_paths` directory), tries to open it for reading,
/// then for writing (creating it), and prints `read ok|denied PATH` and
/// `write ALLOWED|denied PATH`.
pub fn readonly_probe() -> Vec<u8> {
    module(
        r#"
  (data (i32.const 64) "read ok ")
  (data (i32.const 80) "read denied ")
  (data (i32.const 96) "write ALLOWED ")
  (data (i32.const 112) "write denied ")
  (func $line (param $ptr i32) (param $len i32) (param $path i32) (param $plen i32)
    (drop (call $write (i32.const 1) (local.get $ptr) (local.get $len)))
    (drop (call $write (i32.const 1) (local.get $path) (local.get $plen)))
    (drop (call $write (i32.const 1) (i32.const 48) (i32.const 1))))
  (func (export "_start") (local $argc i32) (local $i i32) (local $path i32) (local $len i32)
    (local.set $argc (call $load_args))
    (local.set $i (i32.const 1))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $argc)))
      (local.set $path (call $arg (local.get $i)))
      (local.set $len (call $strlen (local.get $path)))
      ;; read: no flags, FD_READ only
      (if (call $path_open (i32.const 4) (i32.const 0) (local.get $path) (local.get $len)
            (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 8))
        (then (call $line (i32.const 80) (i32.const 12) (local.get $path) (local.get $len)))
        (else (call $line (i32.const 64) (i32.const 8) (local.get $path) (local.get $len))))
      ;; write: O_CREAT, FD_WRITE
      (if (call $path_open (i32.const 4) (i32.const 0) (local.get $path) (local.get $len)
            (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 8))
        (then (call $line (i32.const 112) (i32.const 13) (local.get $path) (local.get $len)))
        (else (call $line (i32.const 96) (i32.const 14) (local.get $path) (local.get $len))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
"#,
    )
}

/// Spins forever.
pub fn spin() -> Vec<u8> {
    module(r#"(func (export "_start") (loop $forever (br $forever)))"#)
}

/// Recurses without end (a stack overflow).
pub fn recurse() -> Vec<u8> {
    module(r#"(func $down (call $down)) (func (export "_start") (call $down))"#)
}

/// `proc_exit(7)`.
pub fn exit7() -> Vec<u8> {
    module(r#"(func (export "_start") (call $proc_exit (i32.const 7)))"#)
}

/// Grows its memory by 1 MiB at a time up to 1 GiB; exits 3 as soon as a
/// `memory.grow` fails, 0 if none did.
pub fn balloon() -> Vec<u8> {
    module(
        r#"
  (func (export "_start") (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 1024)))
      (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1))
        (then (call $proc_exit (i32.const 3))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
"#,
    )
}

/// Writes 1,000 blocks of 40,000 `x` to stdout (40 MB), then exits 0.
pub fn flood() -> Vec<u8> {
    module(
        r#"
  (func (export "_start") (local $i i32)
    (memory.fill (i32.const 16384) (i32.const 120) (i32.const 40000))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 1000)))
      (drop (call $write (i32.const 1) (i32.const 16384) (i32.const 40000)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
"#,
    )
}

/// A valid module without `_start`.
pub fn no_start() -> Vec<u8> {
    wat::parse_str(r#"(module (func (export "main")))"#).expect("valid WAT")
}

/// A module importing a function no WASI host provides.
pub fn unknown_import() -> Vec<u8> {
    wat::parse_str(
        r#"(module (import "env" "launch_missiles" (func (param i32))) (func (export "_start")))"#,
    )
    .expect("valid WAT")
}

/// A preview 1 `module` wrapped into a preview 2 command component, the
/// way `cargo build --target wasm32-wasip2` output looks to a host.
pub fn component(module: &[u8]) -> Vec<u8> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .expect("a preview 1 module")
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        )
        .expect("the command adapter")
        .validate(true)
        .encode()
        .expect("a component")
}
