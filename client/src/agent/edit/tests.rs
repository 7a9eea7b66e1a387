//! Unit tests of `edit`, in their own file so the module stays its logic alone.

use super::*;

#[test]
fn a_section_goes_after_a_blank_line_and_comes_out_byte_for_byte() {
    for text in ["", "# Mine\n", "# Mine\n\nmore\n", "no newline"] {
        let with = with_section(text, "body\n");
        assert!(
            with.contains(&format!("{BEGIN}\nbody\n{END}\n")),
            "{with:?}"
        );
        assert_eq!(with_section(&with, "body\n"), with, "idempotent");
        let expected = if text.is_empty() { None } else { Some(text) };
        let back = without_section(&with);
        if text == "no newline" {
            assert_eq!(back.as_deref(), Some("no newline\n"));
        } else {
            assert_eq!(back.as_deref(), expected, "{with:?}");
        }
    }
}

#[test]
fn a_section_is_replaced_in_place() {
    let text = format!("top\n\n{BEGIN}\nold\n{END}\nbottom\n");
    assert_eq!(
        with_section(&text, "new\n"),
        format!("top\n\n{BEGIN}\nnew\n{END}\nbottom\n")
    );
    assert_eq!(without_section(&text).as_deref(), Some("top\nbottom\n"));
}

#[test]
fn someone_elses_mcp_entry_is_left_alone() {
    let path = Path::new("/x/.mcp.json");
    let theirs = r#"{"mcpServers": {"op-session": {"command": "npx", "args": ["op-session"]}}}"#;
    assert!(matches!(
        json_install(
            path,
            Some(theirs),
            McpFormat::Cursor,
            Path::new("/bin/op-session")
        ),
        Err(EditError::NotOurs { .. })
    ));
    assert_eq!(
        json_uninstall(path, theirs).ok().flatten().as_deref(),
        Some(theirs)
    );
    let toml = "[mcp_servers.op-session]\ncommand = \"npx\"\nargs = []\n";
    assert!(matches!(
        toml_install(path, Some(toml), Path::new("/bin/op-session")),
        Err(EditError::NotOurs { .. })
    ));
}

#[test]
fn a_moved_binary_updates_our_entry() {
    let path = Path::new("/x/config.toml");
    let old = toml_install(path, None, Path::new("/old/op-session")).expect("install");
    let new = toml_install(path, Some(&old), Path::new("/new/op-session")).expect("update");
    assert!(new.contains("command = \"/new/op-session\""), "{new}");
    assert_eq!(toml_uninstall(path, &new).expect("uninstall"), None);
}

#[test]
fn malformed_configs_are_reported_not_replaced() {
    let path = Path::new("/x/mcp.json");
    assert!(matches!(
        json_install(
            path,
            Some("{not json"),
            McpFormat::Cursor,
            Path::new("/op-session")
        ),
        Err(EditError::Malformed { .. })
    ));
    assert!(matches!(
        toml_install(path, Some("[[["), Path::new("/op-session")),
        Err(EditError::Malformed { .. })
    ));
}
