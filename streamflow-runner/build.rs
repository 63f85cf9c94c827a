//! Gives the binary the commit it was built from (`STREAMFLOW_COMMIT`): from the environment
//! when set (a Docker build without `.git`), else from git, else `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=STREAMFLOW_COMMIT");
    let commit = std::env::var("STREAMFLOW_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        // Rebuilt when HEAD moves: the files git changes then, where they exist.
        if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
            for file in ["HEAD", "packed-refs"] {
                let path = std::path::Path::new(&dir).join(file);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
            if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
                let path = std::path::Path::new(&dir).join(reference);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!("cargo:rustc-env=STREAMFLOW_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}
