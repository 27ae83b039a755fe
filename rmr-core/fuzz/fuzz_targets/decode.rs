// SPDX-License-Identifier: GPL-2.0-or-later
//! Every decoder must return an error, never panic, on any input; a message that decodes must
//! re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmr_core::wire::{BrmrMsg, Msg, MAX_MSG_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok((h, m)) = Msg::decode(data) {
        let mut buf = [0u8; MAX_MSG_LEN];
        let n = m.encode(h.group_id, &mut buf).expect("a decoded message re-encodes");
        assert_eq!(&buf[..n], data, "canonical encoding");
    }
    if let Ok(b) = BrmrMsg::decode(data) {
        let mut buf = [0u8; 256];
        let n = b.encode(&mut buf).expect("re-encodes");
        assert_eq!(&buf[..n], data);
    }
});
