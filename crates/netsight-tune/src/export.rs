//! Persistence: the plan as a sysctl.d file, a shell script or a tuned profile,
//! and the sysctl configuration files that would override it at boot.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::journal::{same_value, SysctlChange};
use crate::TuneError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    SysctlD,
    Shell,
    Tuned,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<ExportFormat> {
        match text {
            "sysctl.d" | "sysctl" => Some(ExportFormat::SysctlD),
            "shell" | "sh" => Some(ExportFormat::Shell),
            "tuned" => Some(ExportFormat::Tuned),
            _ => None,
        }
    }
}

/// Where the export should be installed for `ExportFormat::SysctlD`: late in the
/// order, so it wins over distribution defaults.
pub const SYSCTL_D_NAME: &str = "90-netsight.conf";

/// The output runs as root at boot, so every key and value is checked and
/// quoted for its format: a control character (a newline would add a line or a
/// section) is refused everywhere; the shell gets single-quoted words; tuned,
/// whose values expand `${f:exec:...}` and end at `#`, gets only plain characters.
pub fn render(
    format: ExportFormat,
    changes: &[SysctlChange],
    header: &str,
) -> Result<String, TuneError> {
    let header: String = header.chars().filter(|c| !c.is_control()).collect();
    for c in changes {
        let key = netsight_kernel::sysctl_tree::SysctlKey::parse(&c.key)?;
        let refuse = |why: &str| TuneError::Unexportable {
            key: key.name(),
            value: c.value.clone(),
            why: why.to_string(),
        };
        if c.value.chars().any(char::is_control) {
            return Err(refuse("control characters cannot be exported"));
        }
        let plain = c.value.chars().all(|ch| {
            ch.is_ascii_alphanumeric() || matches!(ch, ' ' | '_' | '-' | '.' | ':' | ',' | '/')
        });
        if format == ExportFormat::Tuned && !plain {
            return Err(refuse(
                "tuned profiles take only letters, digits, spaces and _ - . : , /",
            ));
        }
    }
    let mut out = String::new();
    match format {
        ExportFormat::SysctlD => {
            out.push_str(&format!("# /etc/sysctl.d/{SYSCTL_D_NAME}: {header}\n"));
            for c in changes {
                out.push_str(&format!("{} = {}\n", c.key, c.value.trim()));
            }
        }
        ExportFormat::Shell => {
            out.push_str(&format!("#!/bin/sh\n# {header}\nset -e\n"));
            for c in changes {
                out.push_str(&format!(
                    "sysctl -w {}\n",
                    shell_quote(&format!("{}={}", c.key, c.value))
                ));
            }
        }
        ExportFormat::Tuned => {
            out.push_str(&format!(
                "# /etc/tuned/netsight/tuned.conf, then `tuned-adm profile netsight`\n[main]\nsummary={}\n\n[sysctl]\n",
                header.replace(['#', '$', '[', ']'], " ")
            ));
            for c in changes {
                out.push_str(&format!("{}={}\n", c.key, c.value));
            }
        }
    }
    Ok(out)
}

/// One shell word that means exactly `text`: single quotes, each `'` as `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A setting in a sysctl configuration file that differs from the one we want.
#[derive(Debug, Clone, Serialize)]
pub struct Override {
    pub file: PathBuf,
    pub line: usize,
    pub key: String,
    pub value: String,
    pub wanted: String,
}

/// systemd-sysctl's search path, lowest priority first (later files win; a name in
/// /etc masks the same name further down).
pub const SYSCTL_CONFIG_DIRS: &[&str] = &[
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/run/sysctl.d",
    "/etc/sysctl.d",
];

/// Every line of /etc/sysctl.conf and the sysctl.d directories under `root` that sets one
/// of `changes`' keys to another value: at boot or on `sysctl --system` it would
/// undo the change (a file sorting after ours wins; any other re-applies on reload).
pub fn overriding_settings(root: &Path, changes: &[SysctlChange]) -> Vec<Override> {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in SYSCTL_CONFIG_DIRS {
        let dir = root.join(dir.trim_start_matches('/'));
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            found.sort();
            files.extend(found);
        }
    }
    files.push(root.join("etc/sysctl.conf"));
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let Some((key, value)) = parse_setting(line) else {
                continue;
            };
            if let Some(c) = changes.iter().find(|c| c.key == key) {
                if !same_value(&value, &c.value) {
                    out.push(Override {
                        file: file.clone(),
                        line: n + 1,
                        key,
                        value,
                        wanted: c.value.clone(),
                    });
                }
            }
        }
    }
    out
}

/// `key = value` (sysctl.d(5)): `#`/`;` comments, `/` as separator, a leading `-` ignores errors.
fn parse_setting(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
        return None;
    }
    let (key, value) = line.split_once('=')?;
    let key = key.trim().trim_start_matches('-').replace('/', ".");
    Some((key, value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, value: &str) -> SysctlChange {
        SysctlChange {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn formats() {
        let plan = [
            change("net.core.somaxconn", "4096"),
            change("net.ipv4.tcp_rmem", "4096 131072 67108864"),
        ];
        let d = render(ExportFormat::SysctlD, &plan, "test").unwrap();
        assert!(d.contains("net.ipv4.tcp_rmem = 4096 131072 67108864\n"));
        let sh = render(ExportFormat::Shell, &plan, "test").unwrap();
        assert!(sh.contains("sysctl -w 'net.ipv4.tcp_rmem=4096 131072 67108864'\n"));
        let tuned = render(ExportFormat::Tuned, &plan, "test").unwrap();
        assert!(tuned.contains("[sysctl]\nnet.core.somaxconn=4096\n"));
        assert_eq!(ExportFormat::parse("sysctl.d"), Some(ExportFormat::SysctlD));
        assert_eq!(ExportFormat::parse("xml"), None);
    }

    #[test]
    fn hostile_values_cannot_escape_their_line() {
        let formats = [
            ExportFormat::SysctlD,
            ExportFormat::Shell,
            ExportFormat::Tuned,
        ];
        for value in [
            "1\nkernel.core_pattern=|/tmp/x",
            "1\n[script]\nscript=/tmp/x",
            "1\r\n",
            "\u{0}",
        ] {
            for f in formats {
                assert!(
                    render(f, &[change("net.core.somaxconn", value)], "t").is_err(),
                    "{f:?} took {value:?}"
                );
            }
        }
        for value in ["$(id)", "`id`", "'; id; '", "${f:exec:/bin/id}", "1 # x"] {
            assert!(render(
                ExportFormat::Tuned,
                &[change("net.core.somaxconn", value)],
                "t"
            )
            .is_err());
            let sh = render(
                ExportFormat::Shell,
                &[change("net.core.somaxconn", value)],
                "t",
            )
            .unwrap();
            // The real shell must see the value as one literal argument.
            let script = sh.replace("sysctl -w ", "printf '%s\\n' ");
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("net.core.somaxconn={value}\n"),
                "{sh}"
            );
        }
        assert!(render(
            ExportFormat::SysctlD,
            &[change("kernel.core_pattern", "x")],
            "t"
        )
        .is_err());
        // A header cannot add lines either.
        let d = render(ExportFormat::SysctlD, &[], "a\nkernel.x=1").unwrap();
        assert_eq!(d.lines().count(), 1);
    }

    #[test]
    fn finds_overriding_files() {
        let root = std::env::temp_dir().join(format!("netsight-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc/sysctl.d")).unwrap();
        std::fs::write(
            root.join("etc/sysctl.d/99-local.conf"),
            "# comment\nnet.core.somaxconn = 128\n-net/ipv4/tcp_rmem=4096\t131072\t67108864\nnet.ipv4.tcp_fin_timeout=10\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/sysctl.conf"),
            "; x\nnet.core.somaxconn=4096\n",
        )
        .unwrap();
        let found = overriding_settings(
            &root,
            &[
                change("net.core.somaxconn", "4096"),
                change("net.ipv4.tcp_rmem", "4096 131072 67108864"),
            ],
        );
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "net.core.somaxconn");
        assert_eq!(found[0].line, 2);
        assert_eq!(found[0].value, "128");
    }
}
