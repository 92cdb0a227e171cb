//! The `train` command line: help, refusals that protect earlier work, resume rules.

use std::path::Path;
use std::process::{Command, Output};

fn train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train")).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn data_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").display().to_string()
}

#[test]
fn help_explains_every_flag() {
    let out = train(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--data-dir",
        "--arch",
        "--dataset",
        "--epochs",
        "--batch-size",
        "--lr",
        "--seed",
        "--limit",
        "--device",
        "--out",
        "--resume",
        "--download",
        "--offline",
        "--augment",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    assert!(help.contains("fashion-mnist") && help.contains("artifacts/mnist"));
}

#[test]
fn missing_data_says_where_it_looked() {
    let empty = tempfile::tempdir().unwrap();
    let out = train(&["--data-dir", empty.path().to_str().unwrap(), "--out", empty.path().join("o").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&empty.path().join("mnist").display().to_string()) && err.contains("--download"), "{err}");
}

#[test]
fn bad_values_are_refused_before_any_work() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    for (args, expected) in [
        (vec!["--lr=-1"], "--lr"),
        (vec!["--lr", "inf"], "--lr"),
        (vec!["--batch-size", "0"], "--batch-size"),
        (vec!["--epochs", "0"], "--epochs"),
        (vec!["--dataset", "cifar"], "invalid value"),
    ] {
        let mut all = vec!["--out", o];
        all.extend(args);
        let result = train(&all);
        assert!(!result.status.success(), "{all:?} accepted");
        assert!(stderr(&result).contains(expected), "{all:?}: {}", stderr(&result));
    }
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing written");
}

#[test]
fn an_earlier_run_is_never_overwritten_silently_and_resume_keeps_its_recipe() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let d = data_dir();
    let first = train(&["--data-dir", &d, "--out", o, "--limit", "64", "--epochs", "1", "--quiet"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(String::from_utf8_lossy(&first.stdout).contains("test acc"));

    let again = train(&["--data-dir", &d, "--out", o, "--limit", "64", "--epochs", "1", "--quiet"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--resume") && stderr(&again).contains("--overwrite"), "{}", stderr(&again));

    let conflicting = train(&["--data-dir", &d, "--out", o, "--resume", "--lr", "0.5", "--quiet"]);
    assert!(!conflicting.status.success());
    assert!(stderr(&conflicting).contains("--lr differs"), "{}", stderr(&conflicting));

    let resumed = train(&["--data-dir", &d, "--out", o, "--resume", "--epochs", "2", "--quiet"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(metrics["recipe"]["limit"], 64);
}
