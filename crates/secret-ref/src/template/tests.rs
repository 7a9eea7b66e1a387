//! Unit tests of `template`, in their own file so the module stays its logic alone.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

fn text(s: &str) -> Segment {
    Segment::Text(s.to_owned())
}

fn reference(s: &str) -> Segment {
    Segment::Ref(s.to_owned())
}

fn syntax_error(template: &str) -> String {
    parse(template).unwrap_err().to_string()
}

#[test]
fn enclosed_references_with_or_without_padding() {
    assert_eq!(
        parse("db_password: {{ op://app-prod/db/password }}\n").unwrap(),
        vec![
            text("db_password: "),
            reference("op://app-prod/db/password"),
            text("\n")
        ]
    );
    assert_eq!(
        parse("{{op://prod/docker-credentials/username}}").unwrap(),
        vec![reference("op://prod/docker-credentials/username")]
    );
    assert_eq!(
        parse("{{\top://v/my item/my field?attribute=otp \t}}").unwrap(),
        vec![reference("op://v/my item/my field?attribute=otp")]
    );
}

#[test]
fn unenclosed_references_end_at_the_first_foreign_character() {
    assert_eq!(
        parse("password: op://d3v/stripe.keys/s3ct10n/public_key\n").unwrap(),
        vec![
            text("password: "),
            reference("op://d3v/stripe.keys/s3ct10n/public_key"),
            text("\n")
        ]
    );
    assert_eq!(
        parse("key=\"op://v/i/f\"").unwrap(),
        vec![text("key=\""), reference("op://v/i/f"), text("\"")]
    );
    assert_eq!(
        parse("op://v/2fa/totp?attribute=otp&ssh-format=openssh, next").unwrap(),
        vec![
            reference("op://v/2fa/totp?attribute=otp&ssh-format=openssh"),
            text(", next")
        ]
    );
    // The documented bad examples are cut where the syntax stops.
    assert_eq!(
        parse("op://h?ack/1Password!/for\"real").unwrap(),
        vec![reference("op://h?ack/1Password"), text("!/for\"real")]
    );
    // A reference with a space must be enclosed: unenclosed, it ends at the space.
    assert_eq!(
        parse("op://v/my item/f").unwrap(),
        vec![reference("op://v/my"), text(" item/f")]
    );
}

#[test]
fn unenclosed_references_need_a_clean_left_edge() {
    for before in ["x", "9", "-", "+", "\\", ".", "é"] {
        let template = format!("{before}op://v/i/f");
        assert_eq!(
            parse(&template).unwrap(),
            vec![text(&template)],
            "{template}"
        );
    }
    for before in ["=", " ", "\"", "'", "(", ":", "\n", "/"] {
        let template = format!("{before}op://v/i/f");
        assert_eq!(
            parse(&template).unwrap(),
            vec![text(before), reference("op://v/i/f")],
            "{template}"
        );
    }
}

#[test]
fn a_postgres_url_built_from_five_references() {
    let template = "postgres://{{ op://db/pg/username }}:{{ op://db/pg/password }}@{{ op://db/pg/host }}:{{ op://db/pg/port }}/{{ op://db/pg/database }}";
    let segments = parse(template).unwrap();
    assert_eq!(
        references(&segments),
        vec![
            "op://db/pg/username",
            "op://db/pg/password",
            "op://db/pg/host",
            "op://db/pg/port",
            "op://db/pg/database"
        ]
    );
    let values: HashMap<&str, &str> = [
        ("op://db/pg/username", "app"),
        ("op://db/pg/password", "s3cr3t"),
        ("op://db/pg/host", "db.internal"),
        ("op://db/pg/port", "5432"),
        ("op://db/pg/database", "orders"),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        render(&segments, |r| values.get(r).copied()).unwrap(),
        "postgres://app:s3cr3t@db.internal:5432/orders"
    );
}

#[test]
fn unenclosed_references_share_a_line_too() {
    let segments = parse("u=op://v/i/user p=op://v/i/pass u2=op://v/i/user").unwrap();
    assert_eq!(
        references(&segments),
        vec!["op://v/i/user", "op://v/i/pass"]
    );
    let rendered = render(&segments, |r| {
        Some(if r.ends_with("user") { "U" } else { "P" })
    });
    assert_eq!(rendered.unwrap(), "u=U p=P u2=U");
}

#[test]
fn escaped_text_is_output_literally() {
    assert_eq!(
        parse("{{ \"{{ test op://prod/docker/password }}\" }}").unwrap(),
        vec![text("{{ test op://prod/docker/password }}")]
    );
    assert_eq!(
        parse("a {{\"say \\\"hi\\\" \\\\ \\n\"}} b").unwrap(),
        vec![text("a say \"hi\" \\ \\n b")]
    );
}

#[test]
fn other_double_braces_are_plain_text() {
    let helm = "image: {{ .Values.image }}\n{{- if x }}";
    assert_eq!(parse(helm).unwrap(), vec![text(helm)]);
    assert_eq!(parse("{{").unwrap(), vec![text("{{")]);
}

#[test]
fn an_unclosed_tag_is_a_parsing_error_with_its_position() {
    assert_eq!(
        syntax_error("a: 1\nb: {{ op://v/i/f\n"),
        "parsing error at 2:4: unclosed '{{': expected '}}'"
    );
    assert_eq!(
        syntax_error("b: {{ op://v/i/f"),
        "parsing error at 1:4: unclosed '{{': expected '}}'"
    );
    assert_eq!(
        syntax_error("x {{ \"never closed }}"),
        "parsing error at 1:6: unterminated string"
    );
    assert_eq!(
        syntax_error("{{ \"text\" x }}"),
        "parsing error at 1:11: expected '}}' after the quoted text"
    );
}

#[test]
fn a_foreign_character_inside_braces_is_reported_like_op() {
    assert_eq!(
        syntax_error("password: {{ op://vault/item(1)/password }}"),
        "parsing error at 1:29: invalid character: ("
    );
    assert_eq!(
        syntax_error("é {{ op://h?ack/1Password!/for }}"),
        "parsing error at 1:26: invalid character: !"
    );
}

#[test]
fn variables_are_expanded_before_parsing() {
    let lookup = vars::case_insensitive_lookup([("APP_ENV", "prod")]);
    let expanded = expand_vars(
        "{{ op://${app_env}/db/password }} op://${VAULT:-dev}/x/y",
        &lookup,
    );
    assert_eq!(expanded, "{{ op://prod/db/password }} op://dev/x/y");
    assert_eq!(
        references(&parse(&expanded).unwrap()),
        vec!["op://prod/db/password", "op://dev/x/y"]
    );
}

#[test]
fn rendering_names_the_missing_reference() {
    let segments = parse("a={{ op://v/i/a }} b={{ op://v/i/b }}").unwrap();
    let err = render(&segments, |r| (r == "op://v/i/a").then_some("A")).unwrap_err();
    assert_eq!(err, TemplateError::Unresolved("op://v/i/b".to_owned()));
    assert_eq!(
        err.to_string(),
        "no value for secret reference 'op://v/i/b'"
    );
}

#[test]
fn a_template_without_references_renders_unchanged() {
    let template = "plain: text\n{{ .Helm }} $5\n";
    let segments = parse(template).unwrap();
    assert!(references(&segments).is_empty());
    assert_eq!(render(&segments, |_| None).unwrap(), template);
}

proptest! {
    #[test]
    fn parse_never_panics(s in ".*") {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_template_like_input(s in "([ab {}\"\\\\é\n.]|op://|\\{\\{|\\}\\})*") {
        let parsed = parse(&s);
        // Without `{{` nothing is escaped or trimmed: the pieces add up to the input.
        if !s.contains("{{") {
            let segments = parsed.unwrap();
            let joined: String = segments
                .iter()
                .map(|seg| match seg {
                    Segment::Text(t) | Segment::Ref(t) => t.as_str(),
                })
                .collect();
            prop_assert_eq!(joined, s);
        }
    }
}
