//! `weir new`: a plugin project that builds as it is, with a sample transform, a unit test, a
//! sample input and a pipeline config that runs it on the embedded Kafka.

use std::path::{Path, PathBuf};

use super::AuthoringError;

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate on the weir guest SDK.
    Rust,
    /// An npm package on the weir AssemblyScript SDK.
    #[value(name = "assemblyscript", alias = "as")]
    AssemblyScript,
}

/// Files shared by every language.
const SAMPLE: &str = include_str!("templates/common/sample.jsonl");
const PIPELINE: &str = include_str!("templates/common/pipeline.yaml");
/// What the sample transform answers for the sample with `min_amount: 100`, for `--expect`.
const EXPECTED: &str = include_str!("templates/common/expected.jsonl");

/// `(path, template)` of a project in `lang`.
fn templates(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Rust => &[
            ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            (
                ".cargo/config.toml",
                include_str!("templates/rust/.cargo/config.toml"),
            ),
            ("src/lib.rs", include_str!("templates/rust/src/lib.rs")),
            (
                "rust-toolchain.toml",
                include_str!("../../../rust-toolchain.toml"),
            ),
            ("README.md", include_str!("templates/rust/README.md")),
            (".gitignore", "/target\n/out\nCargo.lock\n"),
        ],
        Lang::AssemblyScript => &[
            (
                "package.json",
                include_str!("templates/assemblyscript/package.json"),
            ),
            (
                "asconfig.json",
                include_str!("templates/assemblyscript/asconfig.json"),
            ),
            (
                "assembly/index.ts",
                include_str!("templates/assemblyscript/assembly/index.ts"),
            ),
            (
                "assembly/tsconfig.json",
                include_str!("templates/assemblyscript/assembly/tsconfig.json"),
            ),
            (
                "README.md",
                include_str!("templates/assemblyscript/README.md"),
            ),
            (".gitignore", "/node_modules\n/build\n/out\n"),
        ],
    }
}

/// The SDK a project builds on, from a weir source tree: the one weir was built from, unless
/// `--sdk` names another.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk")
}

/// Writes a new project named `name` into `dir` (which must not exist, or be empty) and returns
/// the files written. `sdk` is the `guest-sdk` folder of a weir source tree.
pub fn scaffold(
    lang: Lang,
    name: &str,
    dir: &Path,
    sdk: &Path,
) -> Result<Vec<PathBuf>, AuthoringError> {
    let err = |m: String| AuthoringError::Scaffold(m);
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(err(format!(
            "`{name}`: a plugin name is lowercase letters, digits, `-` and `_`, starting with a letter"
        )));
    }
    let sdk = match lang {
        Lang::Rust => sdk.to_path_buf(),
        Lang::AssemblyScript => sdk.join("assemblyscript"),
    };
    let marker = match lang {
        Lang::Rust => "Cargo.toml",
        Lang::AssemblyScript => "package.json",
    };
    let sdk = sdk
        .canonicalize()
        .ok()
        .filter(|s| s.join(marker).is_file())
        .ok_or_else(|| {
            err(format!(
                "no weir guest SDK at {}: pass --sdk PATH, the guest-sdk folder of a weir checkout",
                sdk.display()
            ))
        })?;
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(err(format!("{} exists and is not empty", dir.display())));
    }
    let crate_name = name.replace('-', "_");
    let (wasm, params) = match lang {
        Lang::Rust => (
            format!("target/wasm32-unknown-unknown/release/{crate_name}.wasm"),
            "{ min_amount: 100 }",
        ),
        Lang::AssemblyScript => (format!("build/{name}.wasm"), "{ min_amount: 100 }"),
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{sdk}}", &sdk.display().to_string())
            .replace("{{wasm}}", &wasm)
            .replace("{{params}}", params)
    };
    let common = [
        ("sample.jsonl", SAMPLE),
        ("pipeline.yaml", PIPELINE),
        ("tests/expected.jsonl", EXPECTED),
    ];
    let mut written = Vec::new();
    for (path, template) in templates(lang).iter().chain(common.iter()) {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| err(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&target, fill(template))
            .map_err(|e| err(format!("{}: {e}", target.display())))?;
        written.push(target);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        for lang in [Lang::Rust, Lang::AssemblyScript] {
            let dir = tempfile::tempdir().expect("temp dir");
            let project = dir.path().join("my-plugin");
            let files = scaffold(lang, "my-plugin", &project, &default_sdk()).expect("scaffold");
            for f in files {
                let text = std::fs::read_to_string(&f).expect("read back");
                assert!(!text.contains("{{"), "{}: {text}", f.display());
            }
            let again = scaffold(lang, "my-plugin", &project, &default_sdk());
            assert!(again.is_err(), "a non-empty folder is refused");
        }
    }

    #[test]
    fn names_are_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        for bad in ["", "My", "9lives", "a b", "../x"] {
            assert!(
                scaffold(Lang::Rust, bad, dir.path(), &default_sdk()).is_err(),
                "{bad}"
            );
        }
    }
}
