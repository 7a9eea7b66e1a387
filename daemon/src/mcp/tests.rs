//! Unit tests of [`super`].

use super::*;

#[test]
fn concealed_values_become_the_marker_with_no_length() {
    let item = json!({
        "id": "x", "title": "GitHub",
        "fields": [
            {"id": "username", "type": "STRING", "label": "username", "value": "wendy"},
            {"id": "password", "type": "CONCEALED", "purpose": "PASSWORD", "label": "password",
             "value": "gh-Pa55word-7Hq2", "reference": "op://Dev/GitHub/password",
             "password_details": {"strength": "FANTASTIC", "history": ["old-secret"]}},
            {"id": "otp", "type": "OTP", "label": "one-time password",
             "value": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP", "totp": "123456",
             "section": {"id": "s", "label": "Security"}}
        ]
    });
    let m = mask_item(&item).to_string();
    for secret in ["gh-Pa55word-7Hq2", "old-secret", "JBSWY3DP", "123456"] {
        assert!(!m.contains(secret), "{m}");
    }
    assert!(
        m.contains("wendy") && m.contains("op://Dev/GitHub/password"),
        "{m}"
    );
    assert!(m.contains(CONCEALED_MARKER));
}

#[test]
fn item_argv_never_takes_flags_from_operands() {
    let e = item_argv(&ItemOp::GetItem {
        item: "--help".into(),
        vault: None,
    });
    assert!(e.is_err());
    let a = plan(&ItemOp::EditItem {
        item: "-x".into(),
        vault: Some("Dev".into()),
        title: None,
        fields: vec!["x=1".into()],
        generate_password: false,
    });
    assert!(a.is_err());
    let a = item_argv(&ItemOp::ListItems {
        vault: Some("Dev".into()),
        categories: vec!["Login".into()],
        tags: vec![],
    })
    .expect("ok");
    assert_eq!(
        a,
        [
            "item",
            "list",
            "--vault",
            "Dev",
            "--categories=Login",
            "--format",
            "json"
        ]
    );
}

#[test]
fn item_create_and_edit_carry_no_value_on_the_argv() {
    let Ok(Plan::Create(call, stdin)) = plan(&ItemOp::CreateItem {
        vault: "Dev".into(),
        title: "Deploy".into(),
        category: "Login".into(),
        fields: vec![
            "password=hunter2-value".into(),
            "S.note[text]=also-secret".into(),
        ],
        password_recipe: None,
        tags: vec!["ci".into()],
        url: None,
    }) else {
        panic!("create is a template on stdin");
    };
    let argv = call.args().join(" ");
    assert!(
        !argv.contains("hunter2") && !argv.contains("also-secret"),
        "{argv}"
    );
    assert!(argv.starts_with("item create"), "{argv}");
    assert!(call.args().contains(&"-".to_string()), "{argv}");
    let t: Value = serde_json::from_slice(&stdin).unwrap();
    assert_eq!(t["fields"][0]["value"], "hunter2-value");

    let Ok(Plan::Edit { get, edit, .. }) = plan(&ItemOp::EditItem {
        item: "GitHub".into(),
        vault: Some("Dev".into()),
        title: None,
        fields: vec!["password=hunter2-value".into()],
        generate_password: false,
    }) else {
        panic!("an edit with fields is a template on stdin");
    };
    for c in [get, edit] {
        assert!(!c.args().join(" ").contains("hunter2"));
    }
    // A bad statement's error names the label, not the value.
    let Err(e) = plan(&ItemOp::EditItem {
        item: "GitHub".into(),
        vault: None,
        title: None,
        fields: vec!["password[bogus]=hunter2-value".into()],
        generate_password: false,
    }) else {
        panic!("refused");
    };
    assert!(!e.message.contains("hunter2"), "{}", e.message);
}
