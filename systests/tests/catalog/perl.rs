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
    let log = builder_identity(
        &pods,
        &image,
        &["assemble", "run", "save-artifacts", "usage"],
        "perl -MDancer2 -MDBD::mysql -MDBD::Pg -MPlack -e 'print qq(modules ok\\n)'; \
         command -v cpanm starman plackup",
    )
    .await;
    assert_says(
        &log,
        &[
            "modules ok",
            "/usr/bin/cpanm",
            "/usr/bin/starman",
            "/usr/bin/plackup",
        ],
    );
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
    assert_shows(
        &log,
        &[
            ("No CPAN_MIRROR", "assemble's message"),
            ("Installed dependencies for .", "the cpanfile was satisfied"),
            ("ok 1 - use Hello;", "the post-commit hook's tests"),
            ("Serving ./app.psgi at / on port 8080", "run's message"),
            ("hello from /x on Dancer2", "Starman served app.psgi on 8080"),
            (
                "hello from /y on Dancer2",
                "PSGI_URI_PATH mounted the application at /app",
            ),
        ],
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
    let says = ["Acme::Slipway::Missing", "no CPAN_MIRROR to install it from"];
    fails_saying(&pods, "offline", &image, &[], Some(&missing), &says, &[]).await;
    // With CPAN_MIRROR: that mirror is where cpanminus looked (and, unreachable, why it failed).
    let mirror = [("CPAN_MIRROR", "http://127.0.0.1:9/cpan")];
    let says = [
        "Using the CPAN mirror http://127.0.0.1:9/cpan",
        "Downloading index file http://127.0.0.1:9/cpan/modules/",
    ];
    let never = ["file:///opt/app-root/cpan"];
    fails_saying(&pods, "mirror", &image, &mirror, Some(&missing), &says, &never).await;
    ns.delete().await;
}
