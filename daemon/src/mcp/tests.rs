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
    let a = item_argv(&ItemOp::EditItem {
        item: "GitHub".into(),
        vault: Some("Dev".into()),
        title: None,
        fields: vec!["-x=1".into()],
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
