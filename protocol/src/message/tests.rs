//! Unit tests of [`super`].

use super::*;
use proptest::prelude::*;

#[test]
fn status_round_trip_and_version_in_every_request() {
    let bytes = encode_request(&Request::Status).expect("encodes");
    let text = std::str::from_utf8(&bytes).expect("utf8");
    assert!(
        text.contains(&format!("\"version\":{}", crate::PROTOCOL_VERSION)),
        "{text}"
    );
    assert!(text.contains("\"type\":\"status\""), "{text}");
    assert!(matches!(decode_request(&bytes), Ok(Request::Status)));
}

#[test]
fn other_versions_are_named_not_parsed() {
    let err = decode_request(br#"{"version":99,"type":"from_the_future"}"#).expect_err("v99");
    assert!(matches!(err, DecodeError::Version { client: 99 }));
    assert_eq!(err.to_body().code, ErrorCode::VersionMismatch);
    let err = decode_request(br#"{"type":"status"}"#).expect_err("no version");
    assert_eq!(err.to_body().code, ErrorCode::BadRequest);
}

#[test]
fn tokens_never_show_in_debug() {
    let req = Request::Init(InitRequest {
        account: Some("my".into()),
        mode: Some(Mode::Token),
        session_var: Some("OP_SESSION_ABC".into()),
        token: Some(SecretString::from(
            "gXKhaUdTwsmM1ESz4Q6cakpvtXMAEom7AAw04_xB39s",
        )),
        host: None,
    });
    let dbg = format!("{req:?}");
    assert!(!dbg.contains("gXKhaUdT"), "{dbg}");
    let bytes = encode_request(&req).expect("encodes");
    let back = decode_request(&bytes).expect("decodes");
    let Request::Init(init) = back else {
        panic!("wrong variant")
    };
    assert_eq!(
        init.token.as_ref().map(|t| t.expose_secret().to_string()),
        Some("gXKhaUdTwsmM1ESz4Q6cakpvtXMAEom7AAw04_xB39s".to_string())
    );
}

fn arb_request() -> impl Strategy<Value = Request> {
    let s = ".{0,40}";
    prop_oneof![
        Just(Request::Status),
        Just(Request::Stop),
        Just(Request::OpPath),
        (proptest::option::of(s), any::<bool>())
            .prop_map(|(account, all)| Request::Lock(LockRequest { account, all })),
        (
            proptest::option::of(s),
            proptest::collection::vec(s, 0..8),
            any::<bool>()
        )
            .prop_map(
                |(account, refs, no_cache)| Request::Resolve(ResolveRequest {
                    account,
                    refs,
                    no_cache,
                    purpose: ResolvePurpose::Run,
                    ..ResolveRequest::default()
                })
            ),
        (
            proptest::collection::vec(s, 0..6),
            s,
            proptest::collection::vec((s, s), 0..6)
        )
            .prop_map(|(args, cwd, env)| Request::Passthrough(PassthroughRequest {
                account: None,
                args,
                cwd,
                env,
            })),
        (proptest::option::of(s), s, proptest::option::of(s)).prop_map(
            |(account, reference, client_name)| Request::Check(crate::mcp::CheckRequest {
                account,
                reference,
                via: Some(crate::mcp::Via::mcp(client_name)),
            })
        ),
        (
            proptest::option::of(s),
            s,
            proptest::collection::vec(s, 0..4)
        )
            .prop_map(
                |(vault, item, fields)| Request::Item(crate::mcp::ItemRequest {
                    account: None,
                    op: crate::mcp::ItemOp::EditItem {
                        item,
                        vault,
                        title: None,
                        fields,
                        generate_password: true,
                    },
                    via: Some(crate::mcp::Via::mcp(None)),
                })
            ),
        Just(Request::McpInfo),
        (
            proptest::collection::vec(s, 0..4),
            any::<bool>(),
            proptest::option::of(s)
        )
            .prop_map(|(refs, reveal, program)| Request::Resolve(ResolveRequest {
                refs,
                relayed: Some(crate::mcp::RelayedResolve {
                    via: crate::mcp::Via::mcp(Some("agent".into())),
                    reveal,
                    program,
                }),
                ..ResolveRequest::default()
            })),
        (proptest::option::of(s), proptest::option::of(s)).prop_map(|(account, tok)| {
            Request::Init(InitRequest {
                account,
                mode: Some(Mode::ServiceAccount),
                session_var: None,
                token: tok.map(|t| SecretString::from(t.as_str())),
                host: None,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(req in arb_request()) {
        let bytes = encode_request(&req).expect("encodes");
        let back = decode_request(&bytes).expect("decodes");
        // Secrets do not implement PartialEq; compare the re-encoding instead.
        let again = encode_request(&back).expect("re-encodes");
        prop_assert_eq!(&bytes[..], &again[..]);
    }

    #[test]
    fn garbage_payloads_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        let _ = decode_event(&bytes);
    }

    #[test]
    fn json_with_wrong_shapes_is_rejected(ty in "[a-z_]{0,12}", field in "[a-z_]{1,8}", n in any::<i64>()) {
        let text = format!(r#"{{"version":2,"type":"{ty}","{field}":{n}}}"#);
        let known = ["status", "stop", "op_path", "mcp_info"];
        if !known.contains(&ty.as_str()) {
            prop_assert!(decode_request(text.as_bytes()).is_err());
        }
    }
}

#[test]
fn mcp_fields_are_additive_a_cli_request_has_none_of_them() {
    let bytes = encode_request(&Request::Resolve(ResolveRequest {
        refs: vec!["op://a/b/c".into()],
        ..ResolveRequest::default()
    }))
    .expect("encodes");
    let text = std::str::from_utf8(&bytes).expect("utf8");
    for key in ["via", "reveal", "program"] {
        assert!(!text.contains(key), "{text}");
    }
    // A request without these fields still decodes.
    let old =
        br#"{"version":2,"type":"resolve","refs":["op://a/b/c"],"no_cache":false,"purpose":"run"}"#;
    let Ok(Request::Resolve(r)) = decode_request(old) else {
        panic!("old resolve request no longer decodes")
    };
    assert!(r.relayed.is_none());
}

#[test]
fn a_relayed_resolve_keeps_its_wire_form() {
    let text = br#"{"version":2,"type":"resolve","refs":["op://a/b/c"],"purpose":"run","via":{"channel":"mcp","client_name":"agent"},"program":"/bin/sh"}"#;
    let Ok(Request::Resolve(r)) = decode_request(text) else {
        panic!("a relayed resolve no longer decodes")
    };
    let relayed = r.relayed.clone().expect("relayed");
    assert_eq!(relayed.via, crate::mcp::Via::mcp(Some("agent".into())));
    assert_eq!(relayed.program.as_deref(), Some("/bin/sh"));
    assert!(!relayed.reveal);
    let again = encode_request(&Request::Resolve(r)).expect("encodes");
    let v: serde_json::Value = serde_json::from_slice(&again).expect("json");
    assert_eq!(v["via"]["channel"], "mcp");
    assert_eq!(v["via"]["client_name"], "agent");
    assert_eq!(v["program"], "/bin/sh");
}

#[test]
fn every_error_code_has_a_fix_and_an_exit_code() {
    use ErrorCode::*;
    for code in [
        BadRequest,
        VersionMismatch,
        NotSignedIn,
        SessionExpired,
        Locked,
        AuthDenied,
        AuthTimeout,
        RateLimited,
        PolicyDenied,
        OpFailed,
        OpNotFound,
        OpTimeout,
        PermissionDenied,
        Busy,
        Internal,
        Unreachable,
        ConfirmDenied,
        NotConfirmed,
    ] {
        assert!(!code.default_fix().is_empty());
        assert!(code.exit_code() != 0);
        let json = serde_json::to_string(&code).expect("serializes");
        assert_eq!(json, format!("\"{}\"", code.as_str()));
    }
    assert_eq!(NotSignedIn.exit_code(), 77);
    assert_eq!(RateLimited.exit_code(), 75);
    assert_eq!(PolicyDenied.exit_code(), 78);
    assert_eq!(VersionMismatch.exit_code(), 76);
    assert_eq!(Unreachable.exit_code(), 69);
}

#[test]
fn each_request_name_is_its_wire_tag() {
    use crate::grant::{GrantRequest, RevokeRequest};
    let every = [
        Request::Status,
        Request::Stop,
        Request::OpPath,
        Request::Init(InitRequest::default()),
        Request::Lock(LockRequest::default()),
        Request::Resolve(ResolveRequest::default()),
        Request::Passthrough(PassthroughRequest::default()),
        Request::Grant(GrantRequest::default()),
        Request::Grants,
        Request::Revoke(RevokeRequest::default()),
        Request::Check(crate::mcp::CheckRequest::default()),
        Request::Item(crate::mcp::ItemRequest {
            account: None,
            op: crate::mcp::ItemOp::ListVaults,
            via: None,
        }),
        Request::McpInfo,
        Request::Approvals(crate::confirm::ApprovalsRequest::default()),
    ];
    for r in &every {
        let v = serde_json::to_value(r).expect("serializes");
        assert_eq!(v["type"], r.name(), "{v}");
    }
}
