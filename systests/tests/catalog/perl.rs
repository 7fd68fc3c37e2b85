//! The Perl builder (sclorg's s2i-perl-container contract).

use crate::*;

/// The S2I source of a Dancer2 application with a cpanfile, its test and a PSGI file, as
/// assemble finds it in /tmp/src.
const APP: &str = r#"
mkdir -p /tmp/src/lib /tmp/src/t
cat > /tmp/src/cpanfile <<'CPANFILE'
requires 'Dancer2';
requires 'DBD::mysql';
on 'test' => sub { requires 'Test::More'; };
CPANFILE
cat > /tmp/src/lib/Hello.pm <<'PERL'
package Hello;
use Dancer2;
get '/**' => sub { 'hello from ' . request->path . ' on Dancer2' };
1;
PERL
cat > /tmp/src/app.psgi <<'PERL'
use Hello;
Hello->to_app;
PERL
cat > /tmp/src/t/hello.t <<'PERL'
use Test::More tests => 1;
use_ok('Hello');
PERL
"#;

/// Waits for the application `run` started on 8080 and fetches `path`.
fn fetch(path: &str) -> String {
    format!("for i in $(seq 1 100); do curl -fs localhost:8080{path} && break; sleep 0.2; done; echo\n")
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn perl_builder_labels_user_and_environment() {
    let (image, config) = stand_in("perl");
    assert_builder_labels(&config);
    let labels = labels(&config);
    assert!(labels["io.openshift.tags"].contains("perl"), "{labels:?}");
    let env = environment(&config);
    assert!(env["PERL_VERSION"].starts_with("5."), "{env:?}");
    let (_client, ns, pods) = namespace("cat-perl").await;
    let log = succeeds(
        &pods,
        "identity",
        &image,
        &[],
        &format!(
            "{IDENTITY} ls /usr/libexec/s2i; touch /opt/app-root/src/w && echo writable; \
             perl -MDancer2 -MDBD::mysql -MDBD::Pg -MPlack -e 'print qq(modules ok\\n)'; \
             command -v cpanm starman plackup"
        ),
    )
    .await;
    assert!(log.contains("uid=1001 gid=0"), "{log}");
    for script in ["assemble", "run", "save-artifacts", "usage"] {
        assert!(
            log.lines().any(|l| l == script),
            "no {script} in /usr/libexec/s2i:\n{log}"
        );
    }
    assert!(log.contains("writable"), "{log}");
    assert!(log.contains("modules ok"), "{log}");
    for tool in ["cpanm", "starman", "plackup"] {
        assert!(log.contains(&format!("/usr/bin/{tool}")), "{log}");
    }
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn perl_assemble_resolves_cpanfile_offline_and_run_serves_the_psgi_file() {
    let (image, _) = stand_in("perl");
    let (_client, ns, pods) = namespace("cat-perl-run").await;
    // The templates' post-commit hook runs the tests from $HOME after assemble.
    let script = format!(
        "set -e\n{APP}\n/usr/libexec/s2i/assemble\n\
         cd $HOME && perl -I extlib/lib/perl5 -I lib t/*\n\
         /usr/libexec/s2i/run &\n{}\
         kill %1; wait %1 || true\n\
         PSGI_URI_PATH=/app /usr/libexec/s2i/run &\n{}",
        fetch("/x"),
        fetch("/app/y"),
    );
    let log = succeeds(&pods, "assemble", &image, &[("CPAN_MIRROR", "")], &script).await;
    assert!(log.contains("No CPAN_MIRROR"), "{log}");
    assert!(
        log.contains("Installed dependencies for ."),
        "the cpanfile was satisfied:\n{log}"
    );
    assert!(log.contains("ok 1 - use Hello;"), "{log}");
    assert!(log.contains("Serving ./app.psgi at / on port 8080"), "{log}");
    assert!(
        log.contains("hello from /x on Dancer2"),
        "Starman served app.psgi on 8080:\n{log}"
    );
    assert!(
        log.contains("hello from /y on Dancer2"),
        "PSGI_URI_PATH mounted the application at /app:\n{log}"
    );
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn perl_assemble_fails_offline_on_a_missing_module_and_uses_cpan_mirror_when_given() {
    let (image, _) = stand_in("perl");
    let (_client, ns, pods) = namespace("cat-perl-mirror").await;
    let missing = format!(
        "{APP}\necho \"requires 'Acme::Slipway::Missing';\" >> /tmp/src/cpanfile\n\
         /usr/libexec/s2i/assemble"
    );
    // Offline: the module is not in the image, and nothing is fetched.
    let (phase, log) = run(&pods, "offline", &image, &[], Some(&missing)).await;
    assert_eq!(phase, "Failed", "{log}");
    assert!(log.contains("Acme::Slipway::Missing"), "{log}");
    assert!(log.contains("no CPAN_MIRROR to install it from"), "{log}");
    // With CPAN_MIRROR: that mirror is where cpanminus looked (and, unreachable, why it failed).
    let (phase, log) = run(
        &pods,
        "mirror",
        &image,
        &[("CPAN_MIRROR", "http://127.0.0.1:9/cpan")],
        Some(&missing),
    )
    .await;
    assert_eq!(phase, "Failed", "{log}");
    assert!(
        log.contains("Using the CPAN mirror http://127.0.0.1:9/cpan"),
        "{log}"
    );
    assert!(
        log.contains("Downloading index file http://127.0.0.1:9/cpan/modules/"),
        "{log}"
    );
    assert!(!log.contains("file:///opt/app-root/cpan"), "{log}");
    ns.delete().await;
}
