//! Fuzz the secret-reference parser and the inject-template scanner.
//! A reference that parses must normalize and print without panicking, and its normalized
//! form must parse to the same normalized form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = secret_ref::reference::parse(s) {
        let n = r.normalized();
        let again = secret_ref::reference::parse(&n).expect("a normalized reference parses");
        assert_eq!(again.normalized(), n);
        let _ = r.to_string();
    }
    if let Ok(segs) = secret_ref::template::parse(s) {
        let _ = secret_ref::template::references(&segs);
    }
});
