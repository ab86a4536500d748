;; stamp: `stamp FILE TEXT` creates or truncates FILE (relative to the
;; task's worktree, which the guest sees as `.`) and writes TEXT and a
;; newline into it. A WASI preview 1 command, written in WAT so that it
;; builds without a wasm toolchain; stamp.wasm is this file compiled
;; (`cargo test -p swarm --test e2e example_wasm_tool` checks they match,
;; SWARM_UPDATE_SCHEMA=1 rebuilds it).
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

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
)
