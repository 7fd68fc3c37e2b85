//! `slip` built again inside this package, so that its tests can run the real CLI by
//! `CARGO_BIN_EXE_slip-under-test` (Cargo gives a test the path of its own package's binaries
//! only). The program is the `slip` library's; nothing here differs from the shipped binary.

fn main() -> std::process::ExitCode {
    slip::main()
}
