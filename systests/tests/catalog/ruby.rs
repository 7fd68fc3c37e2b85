//! The Ruby builder (sclorg's s2i-ruby-container contract).

use crate::*;

/// The S2I source of a Rack application with a Gemfile that wants Puma, as assemble finds it in
/// /tmp/src.
const APP: &str = r##"
mkdir -p /tmp/src
cat > /tmp/src/Gemfile <<'RUBY'
source 'https://rubygems.org'
gem 'rack'
gem 'puma'
RUBY
cat > /tmp/src/config.ru <<'RUBY'
run ->(env) { [200, {'content-type' => 'text/plain'}, ["hello from #{env['PATH_INFO']} on Ruby in #{ENV['RACK_ENV']}\n"]] }
RUBY
"##;

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn ruby_builder_labels_user_and_environment() {
    let (image, config) = stand_in("ruby");
    assert_builder_labels(&config);
    let labels = labels(&config);
    assert!(labels["io.openshift.tags"].contains("ruby"), "{labels:?}");
    let env = environment(&config);
    assert!(env["RUBY_VERSION"].starts_with("3."), "{env:?}");
    assert_eq!(env["RACK_ENV"], "production");
    assert_eq!(env["RAILS_ENV"], "production");
    assert_eq!(env["PUMA_MIN_THREADS"], "0");
    assert_eq!(env["PUMA_MAX_THREADS"], "16");
    let (_client, ns, pods) = namespace("cat-ruby").await;
    let log = builder_identity(
        &pods,
        &image,
        &["assemble", "run", "save-artifacts", "usage"],
        "ruby -e 'require \"rails\"; require \"pg\"; require \"puma\"; puts \"gems ok\"'; \
         command -v ruby bundle rake puma",
    )
    .await;
    assert_says(
        &log,
        &[
            "gems ok",
            "/usr/bin/ruby",
            "/usr/bin/bundle",
            "/usr/bin/rake",
            "/usr/bin/puma",
        ],
    );
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn ruby_assemble_bundles_offline_and_run_serves_puma() {
    let (image, _) = stand_in("ruby");
    let (_client, ns, pods) = namespace("cat-ruby-run").await;
    let script = format!(
        "set -e\n{APP}\n/usr/libexec/s2i/assemble\n\
         PUMA_WORKERS=1 /usr/libexec/s2i/run &\n{}",
        fetch("/x"),
    );
    let log = succeeds(&pods, "assemble", &image, &[("RUBYGEM_MIRROR", "")], &script).await;
    assert_shows(
        &log,
        &[
            ("No RUBYGEM_MIRROR", "assemble's message"),
            ("Bundle complete!", "the Gemfile was satisfied"),
            ("Starting Puma on port 8080 (1 workers", "run's message"),
            (
                "hello from /x on Ruby in production",
                "Puma served config.ru on 8080",
            ),
        ],
    );
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn ruby_assemble_fails_offline_on_a_missing_gem_and_uses_rubygem_mirror_when_given() {
    let (image, _) = stand_in("ruby");
    let (_client, ns, pods) = namespace("cat-ruby-mirror").await;
    let missing =
        format!("{APP}\necho \"gem 'slipway-missing'\" >> /tmp/src/Gemfile\n/usr/libexec/s2i/assemble");
    // Offline: the gem is not in the image, and nothing is fetched.
    let says = ["slipway-missing", "no RUBYGEM_MIRROR to install it from"];
    fails_saying(&pods, "offline", &image, &[], Some(&missing), &says, &[]).await;
    // With RUBYGEM_MIRROR: that mirror is where Bundler looked (and, unreachable, why the
    // install failed).
    let mirror = [("RUBYGEM_MIRROR", "http://127.0.0.1:9/rubygems")];
    let says = [
        "Using the RubyGems mirror http://127.0.0.1:9/rubygems",
        "Fetching source index from http://127.0.0.1:9/rubygems/",
    ];
    let never = ["No RUBYGEM_MIRROR"];
    fails_saying(&pods, "mirror", &image, &mirror, Some(&missing), &says, &never).await;
    ns.delete().await;
}
