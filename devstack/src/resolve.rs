//! Template expressions (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`) evaluated to local values:
//! parameters to what the local stack passes, tables and streams to their local names, APIs to
//! local ids, ARNs built in the local account and region, and API Gateway URLs
//! (`https://{api}.execute-api.{region}.amazonaws.com`) rewritten to the local gateway, the way
//! a DNS override would send them there.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The account every local ARN is in (moto's default account).
pub const ACCOUNT: &str = "123456789012";

/// What references resolve to locally.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    pub region: String,
    pub stack_name: String,
    /// Parameter or logical id → its value for `Ref`.
    pub refs: BTreeMap<String, String>,
    /// Logical id → its ARN for `Fn::GetAtt [id, Arn]`.
    pub arns: BTreeMap<String, String>,
    /// (AWS URL prefix, local URL prefix) pairs applied to every resolved string.
    pub rewrites: Vec<(String, String)>,
}

impl Resolver {
    /// Sends `https://{api_id}.execute-api.{region}.amazonaws.com` (and `wss://`) to `local_base`
    /// (`http://127.0.0.1:PORT`).
    pub fn route_api(&mut self, api_id: &str, local_base: &str) {
        let host = format!("{api_id}.execute-api.{}.amazonaws.com", self.region);
        let local_host = local_base.trim_start_matches("http://");
        self.rewrites.push((format!("https://{host}"), local_base.to_owned()));
        self.rewrites.push((format!("wss://{host}"), format!("ws://{local_host}")));
    }

    /// The local value of an expression, as a string.
    pub fn resolve(&self, value: &Value) -> Result<String> {
        let text = self.evaluate(value)?;
        Ok(self.rewrite(text))
    }

    fn rewrite(&self, mut text: String) -> String {
        for (from, to) in &self.rewrites {
            if text.contains(from.as_str()) {
                text = text.replace(from.as_str(), to);
            }
        }
        text
    }

    fn evaluate(&self, value: &Value) -> Result<String> {
        match value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(flag) => Ok(flag.to_string()),
            Value::Object(map) => self.intrinsic(map),
            Value::Null | Value::Array(_) => bail!("{value} is not a value a function's environment can hold"),
        }
    }

    fn intrinsic(&self, map: &Map<String, Value>) -> Result<String> {
        let mut entries = map.iter();
        let (Some((function, argument)), None) = (entries.next(), entries.next()) else {
            bail!("{} is not an intrinsic function", Value::Object(map.clone()));
        };
        match function.as_str() {
            "Ref" => self.reference(argument.as_str().context("Ref takes a name")?),
            "Fn::GetAtt" => {
                let (id, attribute) = match argument {
                    Value::String(text) => text.split_once('.').context("Fn::GetAtt takes Id.Attribute")?,
                    Value::Array(parts) => (
                        parts.first().and_then(Value::as_str).context("Fn::GetAtt takes [Id, Attribute]")?,
                        parts.get(1).and_then(Value::as_str).context("Fn::GetAtt takes [Id, Attribute]")?,
                    ),
                    _ => bail!("Fn::GetAtt takes [Id, Attribute]"),
                };
                self.attribute(id, attribute)
            }
            "Fn::Sub" => self.sub(argument),
            "Fn::Join" => {
                let parts = argument.as_array().context("Fn::Join takes [separator, [values]]")?;
                let separator = parts.first().and_then(Value::as_str).context("Fn::Join takes a separator")?;
                let items = parts.get(1).and_then(Value::as_array).context("Fn::Join takes a list")?;
                let items: Vec<String> = items.iter().map(|item| self.evaluate(item)).collect::<Result<_>>()?;
                Ok(items.join(separator))
            }
            other => bail!("{other} is not evaluated locally"),
        }
    }

    fn reference(&self, name: &str) -> Result<String> {
        match name {
            "AWS::Region" => Ok(self.region.clone()),
            "AWS::AccountId" => Ok(ACCOUNT.to_owned()),
            "AWS::Partition" => Ok("aws".to_owned()),
            "AWS::URLSuffix" => Ok("amazonaws.com".to_owned()),
            "AWS::StackName" => Ok(self.stack_name.clone()),
            _ => self.refs.get(name).cloned().with_context(|| format!("{name} has no local value")),
        }
    }

    fn attribute(&self, id: &str, attribute: &str) -> Result<String> {
        match attribute {
            "Arn" => self.arns.get(id).cloned().with_context(|| format!("{id} has no local ARN")),
            _ => bail!("{id}.{attribute} has no local value"),
        }
    }

    fn sub(&self, argument: &Value) -> Result<String> {
        let (text, variables) = match argument {
            Value::String(text) => (text.as_str(), None),
            Value::Array(parts) => (
                parts.first().and_then(Value::as_str).context("Fn::Sub takes a string")?,
                parts.get(1).and_then(Value::as_object),
            ),
            _ => bail!("Fn::Sub takes a string or [string, variables]"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').context("Fn::Sub has an unclosed ${")?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.and_then(|variables| variables.get(name)) {
                out.push_str(&self.evaluate(value)?);
            } else if let Some((id, attribute)) = name.split_once('.').filter(|(id, _)| !id.contains("::")) {
                out.push_str(&self.attribute(id, attribute)?);
            } else {
                out.push_str(&self.reference(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolver() -> Resolver {
        let mut resolver = Resolver { region: "us-east-1".into(), stack_name: "local".into(), ..Resolver::default() };
        resolver.refs.insert("SessionsTable".into(), "local-SessionsTable".into());
        resolver.refs.insert("WebSocketApi".into(), "websocketapi".into());
        resolver.arns.insert("Fn".into(), "arn:aws:lambda:us-east-1:123456789012:function:fn".into());
        resolver.route_api("websocketapi", "http://127.0.0.1:4510");
        resolver
    }

    #[test]
    fn references_become_local_values() {
        let resolver = resolver();
        assert_eq!(resolver.resolve(&json!({"Ref": "SessionsTable"})).ok().as_deref(), Some("local-SessionsTable"));
        assert_eq!(resolver.resolve(&json!("plain")).ok().as_deref(), Some("plain"));
        assert_eq!(resolver.resolve(&json!(60)).ok().as_deref(), Some("60"));
        assert_eq!(
            resolver.resolve(&json!({"Fn::GetAtt": ["Fn", "Arn"]})).ok().as_deref(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:fn")
        );
        assert_eq!(
            resolver.resolve(&json!({"Fn::Join": ["/", ["a", {"Ref": "AWS::Region"}]]})).ok().as_deref(),
            Some("a/us-east-1")
        );
        assert_eq!(
            resolver.resolve(&json!({"Fn::Sub": ["${X}-${!Literal}", {"X": "y"}]})).ok().as_deref(),
            Some("y-${Literal}")
        );
    }

    #[test]
    fn api_gateway_urls_point_at_the_local_gateway() {
        let resolver = resolver();
        let management = json!({"Fn::Sub": "https://${WebSocketApi}.execute-api.${AWS::Region}.amazonaws.com/dev"});
        assert_eq!(resolver.resolve(&management).ok().as_deref(), Some("http://127.0.0.1:4510/dev"));
        let url = json!({"Fn::Sub": "wss://${WebSocketApi}.execute-api.${AWS::Region}.amazonaws.com/dev"});
        assert_eq!(resolver.resolve(&url).ok().as_deref(), Some("ws://127.0.0.1:4510/dev"));
    }

    #[test]
    fn what_has_no_local_value_is_an_error_that_names_it() {
        let resolver = resolver();
        let error = resolver.resolve(&json!({"Ref": "Missing"})).expect_err("unknown");
        assert!(error.to_string().contains("Missing"), "{error}");
        assert!(resolver.resolve(&json!({"Fn::If": ["c", "a", "b"]})).is_err());
        assert!(resolver.resolve(&json!({"Fn::Sub": "${Unclosed"})).is_err());
        assert!(resolver.resolve(&json!(null)).is_err());
    }
}
