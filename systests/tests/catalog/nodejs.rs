//! The Node.js builder (sclorg's s2i-nodejs-container contract).

use crate::*;

/// The S2I source of an Express application on 8080 with a `build` script, as assemble finds it
/// in /tmp/src; with `esbuild` as a development dependency (its build records esbuild's version)
/// when `dev_dependency`.
fn app(dev_dependency: bool) -> String {
    let (dev, build) = if dev_dependency {
        (
            r#", "devDependencies": {"esbuild": "^0.28.0"}"#,
            "'esbuild ' + require('esbuild').version",
        )
    } else {
        ("", "'NODE_ENV ' + process.env.NODE_ENV")
    };
    format!(
        r#"
mkdir -p /tmp/src
cat > /tmp/src/package.json <<'JSON'
{{"name": "hello", "version": "1.0.0", "private": true,
  "scripts": {{"start": "node server.js", "build": "node build.js"}},
  "dependencies": {{"express": "^4.21.2"}}{dev}}}
JSON
cat > /tmp/src/build.js <<'JS'
require('fs').writeFileSync('built.txt', 'built with ' + {build} + '\n');
JS
cat > /tmp/src/server.js <<'JS'
const app = require('express')();
app.get('*', (req, res) => res.send('hello from ' + req.path + ' on express'));
app.listen(8080);
JS
"#
    )
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn nodejs_builder_labels_user_and_environment() {
    let (image, config) = stand_in("nodejs");
    assert_builder_labels(&config);
    let labels = labels(&config);
    assert!(labels["io.openshift.tags"].contains("nodejs"), "{labels:?}");
    let env = environment(&config);
    assert_eq!(env["NODE_ENV"], "production");
    assert_eq!(env["NPM_RUN"], "start");
    assert!(env["NPM_CONFIG_PREFIX"].starts_with("/opt/app-root/"), "{env:?}");
    assert!(
        env["PATH"].contains("/opt/app-root/src/node_modules/.bin"),
        "{env:?}"
    );
    let (_client, ns, pods) = namespace("cat-nodejs").await;
    let log = builder_identity(
        &pods,
        &image,
        &["assemble", "run", "save-artifacts", "usage"],
        "echo node $(node --version); echo npm $(npm --version); command -v node; \
         ls /opt/app-root/npm-cache",
    )
    .await;
    assert_says(&log, &["node v18.", "npm 9.", "/usr/bin/node"]);
    // The carried npm cache (cacache's layout).
    assert!(log.lines().any(|l| l == "_cacache"), "{log}");
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn nodejs_assemble_installs_offline_builds_prunes_and_run_serves_npm_start() {
    let (image, _) = stand_in("nodejs");
    let (_client, ns, pods) = namespace("cat-nodejs-run").await;
    // The pod has no way to the npm registry: the install is from the image's cache alone.
    let script = format!(
        "set -e\n{app}\n/usr/libexec/s2i/assemble\ncat built.txt\nnpm ls express\n\
         [ -d node_modules/esbuild ] || echo 'esbuild pruned'\n\
         /usr/libexec/s2i/run &\n{fetch}",
        app = app(true),
        fetch = fetch("/x"),
    );
    let log = succeeds(&pods, "assemble", &image, &[("NPM_MIRROR", "")], &script).await;
    assert_shows(
        &log,
        &[
            (
                "installing offline from the image's npm cache",
                "assemble's message",
            ),
            (
                "built with esbuild 0.28.",
                "the dev dependency was there for `npm run build`",
            ),
            ("express@4.", "package.json's dependency was installed"),
            (
                "esbuild pruned",
                "NODE_ENV=production prunes the dev dependencies",
            ),
            ("Launching via npm run start", "run's message"),
            ("hello from /x on express", "`npm run start` served on 8080"),
        ],
    );
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn nodejs_assemble_uses_npm_mirror_when_given() {
    let (image, _) = stand_in("nodejs");
    let (_client, ns, pods) = namespace("cat-nodejs-mirror").await;
    let script = format!("{}\n/usr/libexec/s2i/assemble", app(false));
    // The mirror is where npm looked (and, unreachable, why the install failed).
    fails_saying(
        &pods,
        "mirror",
        &image,
        &[
            ("NPM_MIRROR", "http://127.0.0.1:9"),
            ("NPM_CONFIG_FETCH_RETRIES", "0"),
        ],
        Some(&script),
        &[
            "Setting the npm package mirror to http://127.0.0.1:9",
            "request to http://127.0.0.1:9/express failed",
        ],
        &["image's npm cache"],
    )
    .await;
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn nodejs_incremental_build_restores_saved_node_modules() {
    let (image, _) = stand_in("nodejs");
    let (_client, ns, pods) = namespace("cat-nodejs-incr").await;
    // A first build, its artifacts as S2I gives them to the next build (/tmp/artifacts), then a
    // second build from a clean application directory whose only registry is unreachable: it
    // can only succeed with the restored node_modules.
    let script = format!(
        "set -e\n{app}\n/usr/libexec/s2i/assemble\n\
         /usr/libexec/s2i/save-artifacts > /tmp/artifacts.tar\n\
         tar -tf /tmp/artifacts.tar | grep -x node_modules/express/package.json\n\
         find \"$HOME\" -mindepth 1 -delete\n\
         mkdir -p /tmp/artifacts && tar -xf /tmp/artifacts.tar -C /tmp/artifacts\n\
         {app}\n\
         NPM_MIRROR=http://127.0.0.1:9 NPM_CONFIG_FETCH_RETRIES=0 /usr/libexec/s2i/assemble\n\
         /usr/libexec/s2i/run &\n{fetch}",
        app = app(false),
        fetch = fetch("/x"),
    );
    let log = succeeds(&pods, "incremental", &image, &[], &script).await;
    assert_shows(
        &log,
        &[
            (
                "node_modules/express/package.json",
                "save-artifacts wrote node_modules",
            ),
            (
                "Restoring previous build artifacts (node_modules)",
                "assemble's message",
            ),
            ("hello from /x on express", "the restored build serves"),
        ],
    );
    ns.delete().await;
}
