//! The committed documents pass the ecosystem's own parsers: `@asyncapi/parser` (AsyncAPI 3)
//! and `@readme/openapi-parser` (OpenAPI 3.1), pinned in `xtask/node` and installed by
//! `cargo xtask test` (`npm ci` into `target/tools/node`). The parsers run under Node.js
//! through the committed script `xtask/node/check-documents.cjs`; a failure shows their
//! diagnostics. Without Node.js or the installed parsers the tests fail and say what to do.

use protocol_docs::{ASYNCAPI_PATH, OPENAPI_PATH, PARSERS_DIR, PARSERS_PACKAGE, PARSERS_SCRIPT};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The oldest Node.js the pinned parsers support.
const NODE_MAJOR: u32 = 20;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the parsers over two documents; panics with what to install when they cannot run.
fn run_parsers(asyncapi: &Path, openapi: &Path) -> Output {
    let root = root();
    let version = Command::new("node").arg("--version").output().ok().filter(|output| output.status.success());
    let Some(version) = version else {
        panic!(
            "Node.js is not on PATH: install Node.js {NODE_MAJOR} or newer with npm (Debian or Ubuntu: `apt-get install nodejs npm`), then run `cargo xtask test`"
        );
    };
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let major: u32 =
        version.trim_start_matches('v').split('.').next().and_then(|major| major.parse().ok()).unwrap_or(0);
    assert!(major >= NODE_MAJOR, "Node.js {version} is too old for the parsers: install Node.js {NODE_MAJOR} or newer");
    let tools = root.join(PARSERS_DIR);
    assert!(
        tools.join("node_modules/@asyncapi/parser").is_dir()
            && tools.join("node_modules/@readme/openapi-parser").is_dir(),
        "the document parsers are not installed in {PARSERS_DIR}: run `cargo xtask test` (it runs `npm ci` with the lock file of {PARSERS_PACKAGE})"
    );
    Command::new("node")
        .arg(root.join(PARSERS_SCRIPT))
        .arg(&tools)
        .args([asyncapi, openapi])
        .output()
        .expect("node runs the parsers")
}

fn report(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn the_committed_documents_pass_the_ecosystems_parsers() {
    let root = root();
    let output = run_parsers(&root.join(ASYNCAPI_PATH), &root.join(OPENAPI_PATH));
    assert!(output.status.success(), "the parsers refuse the published documents:\n{}", report(&output));
}

/// The parsers are not a formality: a document that breaks the specifications is refused, with
/// the place of each problem.
#[test]
fn the_parsers_refuse_a_broken_document() {
    let root = root();
    let folder = std::env::temp_dir().join(format!("protocol-docs-broken-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("a temporary folder");
    let read = |path: &str| std::fs::read_to_string(root.join(path)).expect("the committed document");
    let asyncapi = read(ASYNCAPI_PATH).replace("action: receive", "action: listen");
    let openapi = read(OPENAPI_PATH).replace("operationId: getSession", "operationId: createSession");
    let (asyncapi_path, openapi_path) = (folder.join("asyncapi.yaml"), folder.join("openapi.yaml"));
    std::fs::write(&asyncapi_path, asyncapi).expect("written");
    std::fs::write(&openapi_path, openapi).expect("written");
    let output = run_parsers(&asyncapi_path, &openapi_path);
    let _ = std::fs::remove_dir_all(&folder);
    let report = report(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("operations.receiveClientMessage.action"), "{report}");
    assert!(report.to_lowercase().contains("operationid"), "{report}");
}
