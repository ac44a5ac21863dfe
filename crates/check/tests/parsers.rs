//! The importers never panic: on arbitrary text, and on text built from the tokens of every format,
//! each parser returns a history or an error with a position inside the input; whatever parses is
//! then fed to every checker, which must return an error or a verdict, never panic.

use detsim_check::{
    availability, check_causal, check_eventual, check_linearizable, check_sequential, check_session,
    check_transactions, operations, parse_history, CausalOptions, EventualOptions, Format, LinearizabilityOptions,
    Model, SessionGuarantee, SessionOptions, TxnOptions,
};
use proptest::prelude::*;
use std::time::Duration;

const FORMATS: [Option<Format>; 4] = [None, Some(Format::Jsonl), Some(Format::Edn), Some(Format::JepsenLog)];

/// Pieces of every format, so that random text looks enough like a history to get deep into the parsers.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "#{",
    "#_",
    "#inst ",
    "\"",
    "\"x\"",
    "\\",
    "\\u00e9",
    ":process",
    ":type",
    ":invoke",
    ":ok",
    ":fail",
    ":info",
    ":f",
    ":read",
    ":write",
    ":cas",
    ":txn",
    ":append",
    ":r",
    ":w",
    ":key",
    ":value",
    ":time",
    ":error",
    ":nemesis",
    "nil",
    "true",
    "0",
    "1",
    "2",
    "-3",
    "1.5",
    "12N",
    "1/2",
    "é",
    "\n",
    " ",
    "\t",
    ",",
    ";",
    "INFO  jepsen.util - ",
    "{\"index\":0,\"time_ns\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}",
    "{\"type\":\"ok\"",
    ":timed-out",
    "[:append 1 2]",
    "[:r 1 [2]]",
    "[1 4]",
];

fn no_panic(text: &str) -> Result<(), TestCaseError> {
    let lines = text.lines().count().max(1);
    for format in FORMATS {
        match parse_history(text, format) {
            Err(error) => {
                prop_assert!(error.line >= 1 && error.line <= lines + 1, "line {} of {lines}: {error}", error.line);
                prop_assert!(error.column >= 1, "{error}");
            }
            Ok(history) => {
                let Ok(ops) = operations(&history) else { continue };
                let budget =
                    LinearizabilityOptions { time_budget: Some(Duration::from_millis(50)), ..Default::default() };
                for model in Model::ALL {
                    let _ = check_linearizable(&history, model, &budget);
                    let _ = check_sequential(&history, model, &budget);
                }
                let _ = check_eventual(&ops, &EventualOptions::default());
                for guarantee in SessionGuarantee::ALL {
                    let _ = check_session(&ops, guarantee, &SessionOptions::default());
                }
                let _ = check_causal(&ops, &CausalOptions::default());
                let _ = check_transactions(&ops, &TxnOptions::default());
                let _ = availability(&ops, &[]);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        no_panic(&text)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        no_panic(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn history_like_text_never_panics(pieces in prop::collection::vec(prop::sample::select(TOKENS), 0..80)) {
        no_panic(&pieces.concat())?;
        no_panic(&pieces.join(" "))?;
    }
}

/// Well-formed op maps with random values parse, and the checkers judge them.
#[test]
fn history_like_text_often_parses() {
    let text = "{:process 0, :type :invoke, :f :txn, :value [[:append 1 2] [:r 1 nil]]}\n\
                {:process 0, :type :ok, :f :txn, :value [[:append 1 2] [:r 1 [2]]]}\n";
    let history = parse_history(text, None).expect("valid");
    let ops = operations(&history).expect("well formed");
    let verdict = check_transactions(&ops, &TxnOptions::default()).expect("valid transactions");
    assert!(verdict.is_valid(), "{verdict}");
}
