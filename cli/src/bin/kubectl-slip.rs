//! `kubectl-slip`: slip as a kubectl plugin, so that `kubectl slip ...` runs `slip ...`.

fn main() -> std::process::ExitCode {
    slip::main()
}
