//! Links the `swarm` binary with packed relative relocations (`-z
//! pack-relative-relocs`, DT_RELR) where the linker and the C library both
//! know them.
//!
//! The binary is position-independent, so every pointer in its read-only
//! data needs a relocation at start. Stored one per 24-byte entry they were
//! 1.8 MB that every swarm process (the coordinator, the launcher, each
//! agent worker and cluster node) read at start and kept resident; packed,
//! they are a few kilobytes. Whether the toolchain can is found by linking
//! and running a small C program with the flag: an older linker refuses
//! it, and a program linked against a C library that cannot apply them
//! does not start. Either way the binary is linked as before.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // The probe runs what it links: only where the build runs on the
    // target itself, and only for glibc on Linux, where the flag is known.
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("TARGET") != var("HOST")
    {
        return;
    }
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
    // The linker rustc will use: the one configured for the target, else
    // the C compiler driver it calls by default.
    let linker = std::env::var("RUSTC_LINKER")
        .or_else(|_| std::env::var("CC"))
        .unwrap_or_else(|_| "cc".to_string());
    if probe(&linker, Path::new(&out)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether `linker` links a program with the flag, and it runs.
fn probe(linker: &str, dir: &Path) -> bool {
    let source = dir.join("relr_probe.c");
    let program = dir.join("relr_probe");
    // A pointer in initialised data, so the program has a relative
    // relocation to pack.
    let text = "static const char *p = \"x\";\nint main(void) { return p[0] == 'x' ? 0 : 1; }\n";
    if std::fs::write(&source, text).is_err() {
        return false;
    }
    let linked = Command::new(linker)
        .args(["-fPIE", "-pie", "-Wl,-z,pack-relative-relocs", "-o"])
        .arg(&program)
        .arg(&source)
        .output()
        .is_ok_and(|o| o.status.success());
    linked
        && Command::new(&program)
            .status()
            .is_ok_and(|status| status.success())
}
