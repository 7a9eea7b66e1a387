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
    let item: OpItem = serde_json::from_value(item).expect("an item");
    let m = to_json(&item.view()).expect("renders").to_string();
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
fn item_calls_never_take_flags_from_operands() {
    let e = plan(&ItemOp::GetItem {
        item: "--help".into(),
        vault: None,
    });
    assert!(e.is_err());
    let e = plan(&ItemOp::DeleteItem {
        item: "x".into(),
        vault: Some("--format=json".into()),
        archive: false,
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
    let args = |op: ItemOp| match plan(&op) {
        Ok(Plan::Call(c)) => c.args(),
        _ => panic!("one call"),
    };
    assert_eq!(
        args(ItemOp::ListItems {
            vault: Some("Dev".into()),
            categories: vec!["Login".into()],
            tags: vec![],
        }),
        [
            "item",
            "list",
            "--vault=Dev",
            "--categories=Login",
            "--format=json"
        ]
    );
    assert_eq!(args(ItemOp::ListVaults), ["vault", "list", "--format=json"]);
    assert_eq!(
        args(ItemOp::GetItem {
            item: "GitHub".into(),
            vault: None
        }),
        ["item", "get", "--format=json", "GitHub"]
    );
    assert_eq!(
        args(ItemOp::DeleteItem {
            item: "GitHub".into(),
            vault: Some("Dev".into()),
            archive: true
        }),
        ["item", "delete", "--vault=Dev", "--archive=true", "GitHub"]
    );
}

/// What the model sees is the view: the keys today's tools return, in op's shapes, and
/// nothing else of the item (additional information, password details, TOTP codes).
#[test]
fn the_item_view_keeps_only_what_the_tools_show() {
    let raw = json!({
        "id": "i", "title": "Card", "version": 3, "category": "CREDIT_CARD",
        "vault": {"id": "v", "name": "Dev"}, "tags": ["a"], "last_edited_by": "u",
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z",
        "additional_information": "4242",
        "urls": [{"label": "site", "primary": true, "href": "https://x"}],
        "sections": [{"id": "s", "label": "More"}],
        "fields": [
            {"id": "n", "type": "CREDIT_CARD_NUMBER", "label": "number", "value": "4242424242424242",
             "reference": "op://Dev/Card/number"},
            {"id": "e", "type": "EMAIL", "label": "email", "value": "a@b.c",
             "section": {"id": "s", "label": "More"}},
            {"id": "m", "type": "STRING", "label": "memo", "value": ""}
        ],
        "files": [{"id": "f", "name": "key.pem", "size": 12, "content_path": "/v1/x"}]
    });
    let item: OpItem = serde_json::from_value(raw.clone()).expect("an item");
    assert_eq!(
        to_json(&item.view()).expect("renders"),
        json!({
            "id": "i", "title": "Card", "category": "CREDIT_CARD",
            "vault": {"id": "v", "name": "Dev"}, "tags": ["a"],
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z",
            "urls": [{"label": "site", "primary": true, "href": "https://x"}],
            "sections": [{"id": "s", "label": "More"}],
            "fields": [
                {"id": "n", "type": "CREDIT_CARD_NUMBER", "label": "number",
                 "value": CONCEALED_MARKER, "reference": "op://Dev/Card/number"},
                {"id": "e", "type": "EMAIL", "label": "email", "value": "a@b.c",
                 "section": {"id": "s", "label": "More"}},
                {"id": "m", "type": "STRING", "label": "memo"}
            ],
            "files": [{"id": "f", "name": "key.pem", "size": 12}]
        })
    );
    let item: OpItem = serde_json::from_value(raw).expect("an item");
    assert_eq!(
        to_json(&item.summary()).expect("renders"),
        json!({
            "id": "i", "title": "Card", "category": "CREDIT_CARD",
            "vault": {"id": "v", "name": "Dev"}, "tags": ["a"],
            "urls": [{"label": "site", "primary": true, "href": "https://x"}],
            "updated_at": "2024-01-02T00:00:00Z"
        })
    );
    let vaults: Vec<OpVault> = serde_json::from_value(json!([
        {"id": "v", "name": "Dev", "content_version": 1, "type": "USER_CREATED"},
        {"id": "w", "name": "Prod", "content_version": 1}
    ]))
    .expect("vaults");
    let shown: Vec<_> = vaults
        .into_iter()
        .filter(|v| v.allowed(&["dev".to_string()]))
        .map(OpVault::view)
        .collect();
    assert_eq!(
        to_json(&shown).expect("renders"),
        json!([{"id": "v", "name": "Dev", "type": "USER_CREATED"}])
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
    assert!(
        !e.detail().message.contains("hunter2"),
        "{}",
        e.detail().message
    );
}
