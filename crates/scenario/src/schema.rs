//! The JSON Schema of the scenario format, generated from the types (docs/scenario.schema.json is
//! this output; a test keeps it up to date).

use crate::format::Scenario;

/// The schema as pretty JSON text, ending with a newline.
pub fn scenario_schema_json() -> String {
    let schema = schemars::schema_for!(Scenario);
    serde_json::to_string_pretty(&schema).expect("schemas serialise") + "\n"
}
