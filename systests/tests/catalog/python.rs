//! The Python builder (sclorg's s2i-python-container contract).

use crate::*;

/// The S2I source of a WSGI application and its requirements, as assemble finds it in /tmp/src.
const APP: &str = r#"
mkdir -p /tmp/src
printf 'gunicorn\n' > /tmp/src/requirements.txt
cat > /tmp/src/hello.py <<'PY'
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from " + environ["PATH_INFO"].encode()]
PY
"#;

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn python_builder_labels_user_and_environment() {
    let (image, config) = stand_in("python");
    assert_builder_labels(&config);
    let (_client, ns, pods) = namespace("cat-python").await;
    let log = builder_identity(
        &pods,
        &image,
        &["assemble", "run", "usage"],
        "python --version; command -v python",
    )
    .await;
    // The virtual environment's python comes first on PATH, as in sclorg's image.
    assert_says(&log, &["/opt/app-root/bin/python"]);
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn python_assemble_installs_requirements_offline_and_run_serves_app_module() {
    let (image, _) = stand_in("python");
    let (_client, ns, pods) = namespace("cat-python-run").await;
    let script = format!(
        "set -e\n{APP}\n/usr/libexec/s2i/assemble\npip show gunicorn | grep '^Name'\n\
         APP_MODULE=hello:application /usr/libexec/s2i/run &\n\
         for i in $(seq 1 100); do curl -fs localhost:8080/x && break; sleep 0.2; done\n"
    );
    let log = succeeds(&pods, "assemble", &image, &[("PIP_INDEX_URL", "")], &script).await;
    assert_shows(
        &log,
        &[
            ("installing from the image's wheelhouse", "assemble's message"),
            ("Name: gunicorn", "requirements.txt was installed"),
            (
                "Serving application with gunicorn (hello:application)",
                "run's message",
            ),
            ("hello from /x", "gunicorn served APP_MODULE on 8080"),
        ],
    );
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn python_assemble_uses_pip_index_url_when_given() {
    let (image, _) = stand_in("python");
    let (_client, ns, pods) = namespace("cat-python-index").await;
    let script = format!("{APP}\n/usr/libexec/s2i/assemble");
    // The index is where pip looked (and, unreachable, why the install failed).
    fails_saying(
        &pods,
        "index",
        &image,
        &[
            ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
            ("PIP_RETRIES", "0"),
            ("PIP_DEFAULT_TIMEOUT", "2"),
        ],
        Some(&script),
        &["Using the package index http://127.0.0.1:9/simple", "127.0.0.1"],
        &["wheelhouse"],
    )
    .await;
    ns.delete().await;
}
