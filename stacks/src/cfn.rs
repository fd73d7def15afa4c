//! A typed model of the CloudFormation this project writes: templates, parameters, outputs,
//! intrinsic functions, and exactly the resource types the stacks use.
//!
//! Serialization is deterministic: resources, parameters and outputs are kept in sorted maps,
//! and every property struct serializes its fields in declaration order, so the same input
//! always gives byte-identical JSON.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

/// A value that may be computed by CloudFormation: a literal string or an intrinsic function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Str(String),
    /// `{"Ref": id}`: a parameter's value, or a resource's primary identifier.
    Ref(String),
    /// `{"Fn::GetAtt": [id, attribute]}`.
    GetAtt(String, String),
    /// `{"Fn::Sub": template}` with `${...}` references.
    Sub(String),
    /// `{"Fn::Join": [separator, parts]}`.
    Join(String, Vec<Expr>),
}

impl Expr {
    pub fn str(value: impl Into<String>) -> Expr {
        Expr::Str(value.into())
    }

    pub fn reference(logical_id: impl Into<String>) -> Expr {
        Expr::Ref(logical_id.into())
    }

    pub fn get_att(logical_id: impl Into<String>, attribute: impl Into<String>) -> Expr {
        Expr::GetAtt(logical_id.into(), attribute.into())
    }

    pub fn sub(template: impl Into<String>) -> Expr {
        Expr::Sub(template.into())
    }
}

impl Expr {
    /// The expression as template JSON.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Expr::Str(value) => json!(value),
            Expr::Ref(id) => json!({ "Ref": id }),
            Expr::GetAtt(id, attribute) => json!({ "Fn::GetAtt": [id, attribute] }),
            Expr::Sub(template) => json!({ "Fn::Sub": template }),
            Expr::Join(separator, parts) => {
                json!({ "Fn::Join": [separator, parts.iter().map(Expr::to_json).collect::<Vec<_>>()] })
            }
        }
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// A whole template.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Template {
    #[serde(rename = "AWSTemplateFormatVersion")]
    pub format_version: &'static str,
    pub description: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Parameter>,
    pub resources: BTreeMap<String, Resource>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Output>,
}

impl Template {
    pub fn new(description: impl Into<String>) -> Template {
        Template { format_version: "2010-09-09", description: description.into(), ..Template::default() }
    }

    /// Adds a resource; a logical id used twice is a bug in the stack definition.
    pub fn add(&mut self, logical_id: impl Into<String>, resource: impl Into<Resource>) {
        let logical_id = logical_id.into();
        let previous = self.resources.insert(logical_id.clone(), resource.into());
        assert!(previous.is_none(), "logical id {logical_id} is defined twice");
    }

    /// The template as pretty JSON text, ending with a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The template as CloudFormation YAML text with the short intrinsic forms, ending with a
    /// newline: what people read ([`crate::yaml`]).
    pub fn to_yaml(&self) -> String {
        crate::yaml::to_yaml(&self.to_value())
    }

    /// The template as a JSON value (what the verifier and the diff read).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A template parameter.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parameter {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<&'static str>,
}

/// A template output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub description: String,
    pub value: Expr,
}

/// What happens to a resource's data when it is deleted or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Policy {
    Retain,
    Delete,
}

/// A resource: its typed properties and its resource attributes.
#[derive(Debug, Clone)]
pub struct Resource {
    pub properties: Properties,
    pub depends_on: Vec<String>,
    pub deletion_policy: Option<Policy>,
    pub update_replace_policy: Option<Policy>,
}

impl Resource {
    /// Keeps the resource's data when the resource is deleted or replaced.
    pub fn retained(mut self) -> Resource {
        self.deletion_policy = Some(Policy::Retain);
        self.update_replace_policy = Some(Policy::Retain);
        self
    }

    pub fn depending_on(mut self, logical_ids: Vec<String>) -> Resource {
        self.depends_on = logical_ids;
        self
    }
}

impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("Type", self.properties.type_name())?;
        if let Some(policy) = &self.deletion_policy {
            map.serialize_entry("DeletionPolicy", policy)?;
        }
        if !self.depends_on.is_empty() {
            map.serialize_entry("DependsOn", &self.depends_on)?;
        }
        map.serialize_entry("Properties", &self.properties)?;
        if let Some(policy) = &self.update_replace_policy {
            map.serialize_entry("UpdateReplacePolicy", policy)?;
        }
        map.end()
    }
}

macro_rules! resource_types {
    ($($variant:ident($props:ty) = $type_name:literal,)*) => {
        /// The properties of one resource, by type.
        #[derive(Debug, Clone, Serialize)]
        #[serde(untagged)]
        pub enum Properties {
            $($variant($props),)*
        }

        impl Properties {
            /// The CloudFormation resource type.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Properties::$variant(_) => $type_name,)*
                }
            }
        }

        $(
            impl From<$props> for Resource {
                fn from(properties: $props) -> Resource {
                    Resource {
                        properties: Properties::$variant(properties),
                        depends_on: Vec::new(),
                        deletion_policy: None,
                        update_replace_policy: None,
                    }
                }
            }
        )*
    };
}

resource_types! {
    Table(Table) = "AWS::DynamoDB::Table",
    Stream(Stream) = "AWS::Kinesis::Stream",
    LogGroup(LogGroup) = "AWS::Logs::LogGroup",
    Role(Role) = "AWS::IAM::Role",
    Function(Function) = "AWS::Lambda::Function",
    Permission(Permission) = "AWS::Lambda::Permission",
    Api(Api) = "AWS::ApiGatewayV2::Api",
    Integration(Integration) = "AWS::ApiGatewayV2::Integration",
    Route(Route) = "AWS::ApiGatewayV2::Route",
    Authorizer(Authorizer) = "AWS::ApiGatewayV2::Authorizer",
    Deployment(Deployment) = "AWS::ApiGatewayV2::Deployment",
    Stage(Stage) = "AWS::ApiGatewayV2::Stage",
}

fn is_false(value: &bool) -> bool {
    !value
}

/// `AWS::DynamoDB::Table`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Table {
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub billing_mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    pub key_schema: Vec<KeySchemaElement>,
    pub point_in_time_recovery_specification: PointInTimeRecovery,
    #[serde(rename = "SSESpecification")]
    pub sse_specification: SseSpecification,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_live_specification: Option<TimeToLive>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    pub attribute_name: &'static str,
    pub attribute_type: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeySchemaElement {
    pub attribute_name: &'static str,
    pub key_type: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GlobalSecondaryIndex {
    pub index_name: &'static str,
    pub key_schema: Vec<KeySchemaElement>,
    pub projection: Projection,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Projection {
    pub projection_type: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PointInTimeRecovery {
    pub point_in_time_recovery_enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SseSpecification {
    #[serde(rename = "SSEEnabled")]
    pub sse_enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLive {
    pub attribute_name: &'static str,
    pub enabled: bool,
}

/// `AWS::Kinesis::Stream`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stream {
    pub retention_period_hours: u32,
    pub stream_encryption: StreamEncryption,
    pub stream_mode_details: StreamModeDetails,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamEncryption {
    pub encryption_type: &'static str,
    pub key_id: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    pub stream_mode: &'static str,
}

/// `AWS::Logs::LogGroup`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogGroup {
    pub retention_in_days: u32,
}

/// `AWS::IAM::Role`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    pub assume_role_policy_document: PolicyDocument,
    pub policies: Vec<InlinePolicy>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InlinePolicy {
    pub policy_document: PolicyDocument,
    pub policy_name: String,
}

/// An IAM policy document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub statement: Vec<Statement>,
    pub version: &'static str,
}

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> PolicyDocument {
        PolicyDocument { statement, version: "2012-10-17" }
    }
}

/// One policy statement.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub action: Vec<String>,
    pub effect: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<ServicePrincipal>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<Expr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServicePrincipal {
    pub service: &'static str,
}

/// `AWS::Lambda::Function`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Function {
    pub architectures: Vec<&'static str>,
    pub code: Code,
    pub description: String,
    pub environment: Environment,
    pub handler: &'static str,
    pub logging_config: LoggingConfig,
    pub memory_size: u32,
    pub role: Expr,
    pub runtime: &'static str,
    pub timeout: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Code {
    pub s3_bucket: Expr,
    pub s3_key: Expr,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Environment {
    pub variables: BTreeMap<String, Expr>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    pub log_format: &'static str,
    pub log_group: Expr,
}

/// `AWS::Lambda::Permission`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Permission {
    pub action: &'static str,
    pub function_name: Expr,
    pub principal: &'static str,
    pub source_arn: Expr,
}

/// `AWS::ApiGatewayV2::Api`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Api {
    /// HTTP APIs only: API Gateway answers preflight requests itself and adds the CORS headers
    /// to responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_configuration: Option<Cors>,
    pub name: Expr,
    pub protocol_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_selection_expression: Option<&'static str>,
}

/// `AWS::ApiGatewayV2::Api` `Cors`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cors {
    pub allow_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_origins: Vec<String>,
    pub max_age: u32,
}

/// `AWS::ApiGatewayV2::Integration`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Integration {
    pub api_id: Expr,
    pub integration_type: &'static str,
    pub integration_uri: Expr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_format_version: Option<&'static str>,
}

/// `AWS::ApiGatewayV2::Route`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Route {
    pub api_id: Expr,
    pub authorization_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_id: Option<Expr>,
    pub route_key: String,
    pub target: Expr,
}

/// `AWS::ApiGatewayV2::Authorizer`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Authorizer {
    pub api_id: Expr,
    pub authorizer_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_uri: Option<Expr>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identity_source: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_configuration: Option<JwtConfiguration>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JwtConfiguration {
    pub audience: Vec<String>,
    pub issuer: String,
}

/// `AWS::ApiGatewayV2::Deployment`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deployment {
    pub api_id: Expr,
    pub description: String,
}

/// `AWS::ApiGatewayV2::Stage`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_log_settings: Option<AccessLogSettings>,
    pub api_id: Expr,
    #[serde(skip_serializing_if = "is_false")]
    pub auto_deploy: bool,
    pub default_route_settings: RouteSettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<Expr>,
    pub stage_name: String,
}

/// Where a stage writes one line per request, and the line's format (`$context` variables).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessLogSettings {
    pub destination_arn: Expr,
    pub format: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteSettings {
    pub throttling_burst_limit: u32,
    pub throttling_rate_limit: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intrinsics_serialize_as_cloudformation_expects() {
        let value = |expr: Expr| serde_json::to_value(expr).expect("serializable");
        assert_eq!(value(Expr::str("x")), json!("x"));
        assert_eq!(value(Expr::reference("Api")), json!({"Ref": "Api"}));
        assert_eq!(value(Expr::get_att("Fn", "Arn")), json!({"Fn::GetAtt": ["Fn", "Arn"]}));
        assert_eq!(value(Expr::sub("${Api}/x")), json!({"Fn::Sub": "${Api}/x"}));
        assert_eq!(
            value(Expr::Join("/".into(), vec![Expr::str("integrations"), Expr::reference("I")])),
            json!({"Fn::Join": ["/", ["integrations", {"Ref": "I"}]]})
        );
    }

    #[test]
    fn a_resource_carries_its_type_attributes_and_properties() {
        let resource = Resource::from(LogGroup { retention_in_days: 14 }).retained().depending_on(vec!["A".into()]);
        assert_eq!(
            serde_json::to_value(resource).expect("serializable"),
            json!({"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "DependsOn": ["A"],
                   "Properties": {"RetentionInDays": 14}, "UpdateReplacePolicy": "Retain"})
        );
    }

    #[test]
    #[should_panic(expected = "defined twice")]
    fn a_logical_id_cannot_be_defined_twice() {
        let mut template = Template::new("t");
        template.add("Logs", LogGroup { retention_in_days: 1 });
        template.add("Logs", LogGroup { retention_in_days: 1 });
    }
}
