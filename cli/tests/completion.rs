//! `slip completion SHELL` scripts, loaded by the shells that are here; `kubectl-slip` run by
//! kubectl as a plugin (`kubectl slip ...`).
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::process::Command;

use slipway_testkit::*;

fn slip_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_BIN_EXE_slip"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn with_slip_on_path(command: &mut Command) -> &mut Command {
    let path = format!(
        "{}:{}",
        slip_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    command.env("PATH", path)
}

#[test]
fn the_bash_script_registers_completion_for_slip_and_completes_verbs() {
    let script = "source <(slip completion bash) && complete -p slip && \
        COMP_WORDS=(slip po) COMP_CWORD=1 COMP_LINE='slip po' COMP_POINT=7 && _slip slip po slip && \
        printf 'reply:%s\\n' \"${COMPREPLY[@]}\"";
    let out = with_slip_on_path(Command::new("bash").arg("-c").arg(script))
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let registered = text
        .lines()
        .find(|l| l.starts_with("complete "))
        .unwrap_or_default();
    assert!(
        registered.contains("-F _slip") && registered.ends_with(" slip"),
        "{text}"
    );
    assert!(
        text.contains("reply:policy"),
        "completing `slip po` offers policy: {text}"
    );
}

#[test]
fn every_shell_gets_a_script_and_an_unknown_shell_is_refused() {
    for (shell, needle) in [
        ("bash", "_slip()"),
        ("zsh", "#compdef slip"),
        ("fish", "complete -c slip"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_slip"))
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", output_text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(needle), "{shell} script lacks {needle:?}");
        assert!(
            script.contains("set") && script.contains("expose"),
            "{shell}: the verbs are in it"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_slip"))
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(output_text(&out).contains("tcsh"), "{}", output_text(&out));
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn kubectl_runs_kubectl_slip_as_a_plugin() {
    let kubectl = dev_tool("kubectl");
    let mut command = Command::new(kubectl);
    with_slip_on_path(command.args(["slip", "whoami"]));
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(!text.trim().is_empty(), "whoami names the user: {text}");
    // What slip says and kubectl slip says are the same program's.
    let direct = Command::new(env!("CARGO_BIN_EXE_slip"))
        .arg("whoami")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&direct.stdout),
        String::from_utf8_lossy(&out.stdout)
    );
    let mut plugin_help = Command::new(dev_tool("kubectl"));
    with_slip_on_path(plugin_help.args(["slip", "nonsense-verb"]));
    let out = plugin_help.output().unwrap();
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("nonsense-verb"),
        "{}",
        output_text(&out)
    );
}
