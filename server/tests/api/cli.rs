//! The `server` binary's tenant commands, run as an operator would.
use std::{path::Path, process::Command};

use uuid::Uuid;

use crate::helpers::ADMIN_PASSWORD;

fn run(data_dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    run_server(
        &[("ENCLAVE_DATA_DIR", data_dir.display().to_string())],
        args,
        stdin,
    )
}

/// Runs the `server` binary with `env` (and none of this process's
/// database URLs), `stdin` as its input: (succeeded, stdout, stderr).
pub fn run_server(env: &[(&str, String)], args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env_remove("ENCLAVE_REGISTRY_URL")
        .env_remove("ENCLAVE_TENANT_DB_URL")
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn create(
    data_dir: &Path,
    name: &str,
    sub: &str,
    email: &str,
    password: &str,
) -> (bool, String, String) {
    run(
        data_dir,
        &[
            "tenant",
            "create",
            "--name",
            name,
            "--subdomain",
            sub,
            "--admin-email",
            email,
            "--admin-password-stdin",
        ],
        &format!("{password}\n"),
    )
}

#[test]
fn bad_input_to_tenant_create_gets_a_clear_message_and_creates_nothing() {
    let dir = std::env::temp_dir().join(format!("enclave-cli-{}", Uuid::new_v4()));
    let long_name = "n".repeat(101);
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "Acme",
            "ab",
            "a@acme.test",
            ADMIN_PASSWORD,
            "at least 3 characters",
        ),
        (
            "Acme",
            "-acme",
            "a@acme.test",
            ADMIN_PASSWORD,
            "cannot start or end with a hyphen",
        ),
        (
            "Acme",
            "acme-",
            "a@acme.test",
            ADMIN_PASSWORD,
            "cannot start or end with a hyphen",
        ),
        (
            "Acme",
            "ac_me",
            "a@acme.test",
            ADMIN_PASSWORD,
            "'_' is not allowed",
        ),
        (
            "Acme",
            "www",
            "a@acme.test",
            ADMIN_PASSWORD,
            "'www' is reserved",
        ),
        (
            "Acme",
            "admin",
            "a@acme.test",
            ADMIN_PASSWORD,
            "'admin' is reserved",
        ),
        (
            "Acme",
            "acme; DROP DATABASE x",
            "a@acme.test",
            ADMIN_PASSWORD,
            "';' is not allowed",
        ),
        (
            "Acme",
            "ácme",
            "a@acme.test",
            ADMIN_PASSWORD,
            "'á' is not allowed",
        ),
        (
            "Acme",
            "xn--cme-0na",
            "a@acme.test",
            ADMIN_PASSWORD,
            "encoded international names",
        ),
        (
            "  ",
            "acme",
            "a@acme.test",
            ADMIN_PASSWORD,
            "Enter the company's name",
        ),
        (
            &long_name,
            "acme",
            "a@acme.test",
            ADMIN_PASSWORD,
            "at most 100 characters",
        ),
        (
            "Acme",
            "acme",
            "not-an-email",
            ADMIN_PASSWORD,
            "email address like",
        ),
        (
            "Acme",
            "acme",
            "a@acme.test",
            "short",
            "at least 10 characters",
        ),
    ];
    for (name, sub, email, password, expected) in cases {
        let (ok, _, stderr) = create(&dir, name, sub, email, password);
        assert!(!ok, "{sub} accepted");
        assert!(
            stderr.contains(expected),
            "{sub}: expected '{expected}' in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Validation comes first: not even the data directory was made.
    assert!(!dir.exists());
}

#[test]
fn tenant_create_list_and_show_work_and_never_print_a_database_url() {
    let dir = std::env::temp_dir().join(format!("enclave-cli-{}", Uuid::new_v4()));
    let (ok, out, err) = create(&dir, "Acme Corp", "Acme", "Admin@Acme.test", ADMIN_PASSWORD);
    assert!(ok, "{err}");
    assert!(out.contains("created acme"), "{out}");
    assert!(out.contains("http://acme.localhost:3000/"), "{out}");

    let (ok, _, err) = create(&dir, "Acme Again", "acme", "b@acme.test", ADMIN_PASSWORD);
    assert!(!ok);
    assert!(err.contains("The subdomain 'acme' is taken."), "{err}");

    let (ok, out, _) = run(&dir, &["tenant", "list", "--json"], "");
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["subdomain"], "acme");
    assert_eq!(list[0]["status"], "active");

    let (ok, table, _) = run(&dir, &["tenant", "list"], "");
    assert!(
        ok && table.contains("acme") && table.contains("Acme Corp") && table.contains("default"),
        "{table}"
    );

    let (ok, out, _) = run(&dir, &["tenant", "show", "acme"], "");
    assert!(ok);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["name"], "Acme Corp");
    for output in [&out, &table] {
        assert!(
            !output.contains("sqlite://") && !output.contains("v2:"),
            "{output}"
        );
    }
    let (ok, _, err) = run(&dir, &["tenant", "show", "globex"], "");
    assert!(
        !ok && err.contains("no company has the subdomain 'globex'"),
        "{err}"
    );

    // Users with a password, for automation (people are invited instead).
    let add = |email: &str, role: &str, password: &str| {
        run(
            &dir,
            &[
                "tenant",
                "add-user",
                "acme",
                "--email",
                email,
                "--role",
                role,
                "--password-stdin",
            ],
            &format!("{password}\n"),
        )
    };
    let (ok, out, err) = add("Ops@Acme.test", "admin", "ops password 123");
    assert!(ok, "{err}");
    assert!(
        out.contains("added ops@acme.test to acme as admin"),
        "{out}"
    );
    let (ok, _, err) = add("ops@acme.test", "member", "ops password 123");
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = add("x@acme.test", "owner", "ops password 123");
    assert!(!ok && err.contains("member"), "{err}");
    let (ok, _, err) = add("x@acme.test", "member", "short");
    assert!(!ok && err.contains("at least 10"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn platform_tokens_and_admins_are_listed_revoked_and_removed_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("enclave-cli-{}", Uuid::new_v4()));
    let (ok, token, _) = run(
        &dir,
        &[
            "superadmin",
            "token",
            "create",
            "--label",
            "ci",
            "--expires-in-days",
            "30",
        ],
        "",
    );
    assert!(ok);
    let token = token.trim().to_owned();
    assert!(token.starts_with("enc_"), "{token}");
    let (ok, listed, _) = run(&dir, &["superadmin", "token", "list"], "");
    assert!(ok);
    assert!(
        listed.contains("ci") && !listed.contains(&token),
        "{listed}"
    );
    let line = listed
        .lines()
        .find(|l| l.contains(" ci "))
        .expect("the token's line");
    let id = line.split_whitespace().next().unwrap().to_owned();
    assert_eq!(id.len(), 12, "{line}");
    assert!(!line.ends_with("never"), "an expiry is shown: {line}");
    let (ok, _, err) = run(&dir, &["superadmin", "token", "revoke", "nothex"], "");
    assert!(!ok && err.contains("12 hexadecimal digits"), "{err}");
    let (ok, _, _) = run(&dir, &["superadmin", "token", "revoke", &id], "");
    assert!(ok);
    let (_, listed, _) = run(&dir, &["superadmin", "token", "list"], "");
    assert!(!listed.contains(" ci "), "{listed}");
    let (ok, _, err) = run(&dir, &["superadmin", "token", "revoke", &id], "");
    assert!(!ok && err.contains("no token has the id"), "{err}");

    let pw = format!("{ADMIN_PASSWORD}\n");
    assert!(
        run(
            &dir,
            &[
                "superadmin",
                "create",
                "--email",
                "Root@Platform.test",
                "--password-stdin"
            ],
            &pw
        )
        .0
    );
    let (_, listed, _) = run(&dir, &["superadmin", "list"], "");
    assert!(listed.contains("root@platform.test"), "{listed}");
    let (ok, out, _) = run(
        &dir,
        &[
            "superadmin",
            "password",
            "root@platform.test",
            "--password-stdin",
        ],
        "another long password\n",
    );
    assert!(ok && out.contains("sessions ended"), "{out}");
    let (ok, _, err) = run(
        &dir,
        &[
            "superadmin",
            "password",
            "root@platform.test",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!ok && err.contains("at least 10"), "{err}");
    assert!(run(&dir, &["superadmin", "remove", "root@platform.test"], "").0);
    let (_, listed, _) = run(&dir, &["superadmin", "list"], "");
    assert!(!listed.contains("root@platform.test"), "{listed}");
    let (ok, _, err) = run(&dir, &["superadmin", "remove", "root@platform.test"], "");
    assert!(!ok && err.contains("no platform user"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
