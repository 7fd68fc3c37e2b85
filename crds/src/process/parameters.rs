//! Checking a template's parameters and working out their final values.

use std::collections::{BTreeMap, HashSet};

use super::ProcessError;
use super::generator::Expression;
use super::substitute::is_parameter_name;
use crate::template::Parameter;

/// The only generator OpenShift (and Slipway) knows.
const EXPRESSION_GENERATOR: &str = "expression";

/// Checks the declarations and the given values, then gives every parameter its final value.
///
/// Where the value comes from, first match wins (OpenShift's rules):
/// 1. a non-empty value given by the user;
/// 2. the template's non-empty default `value` — unless the user gave an empty value, which
///    clears the default;
/// 3. the generator, when the parameter has one;
/// 4. empty, which is an error for a required parameter.
///
/// So an empty user value does not stop generation. OpenShift's web console stores every
/// parameter in a TemplateInstance's Secret, the ones the user left blank as empty strings, and
/// relies on the blank generated ones being generated.
///
/// Declarations are checked in full (names, duplicates, generators, expressions) even for
/// parameters the user gives a value to: whether a template is valid does not depend on the
/// values it is processed with.
pub(crate) fn resolve<R: rand::CryptoRng + ?Sized>(
    parameters: &[Parameter],
    values: &BTreeMap<String, String>,
    ignore_unknown: bool,
    rng: &mut R,
) -> Result<Vec<Parameter>, ProcessError> {
    let generators = check_declarations(parameters)?;

    if !ignore_unknown {
        let declared: HashSet<&str> = parameters.iter().map(|p| p.name.as_str()).collect();
        let unknown: Vec<String> = values
            .keys()
            .filter(|name| !declared.contains(name.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(ProcessError::UnknownParameters { names: unknown });
        }
    }

    let mut resolved = Vec::with_capacity(parameters.len());
    let mut missing = Vec::new();
    for (parameter, generator) in parameters.iter().zip(&generators) {
        let value = match (values.get(&parameter.name), parameter.value.as_deref()) {
            (Some(given), _) if !given.is_empty() => given.clone(),
            (None, Some(default)) if !default.is_empty() => default.to_owned(),
            _ => generator
                .as_ref()
                .map(|expression| expression.generate(rng))
                .unwrap_or_default(),
        };
        if parameter.required && value.is_empty() {
            missing.push(parameter.name.clone());
        }
        resolved.push(Parameter {
            value: Some(value),
            ..parameter.clone()
        });
    }
    if !missing.is_empty() {
        return Err(ProcessError::RequiredParameterMissing { names: missing });
    }
    Ok(resolved)
}

/// Checks names, duplicates and generators; returns each parameter's parsed expression, if any.
fn check_declarations(parameters: &[Parameter]) -> Result<Vec<Option<Expression>>, ProcessError> {
    let mut seen = HashSet::with_capacity(parameters.len());
    parameters
        .iter()
        .map(|parameter| {
            let name = &parameter.name;
            if !is_parameter_name(name) {
                return Err(ProcessError::InvalidParameterName { name: name.clone() });
            }
            if !seen.insert(name.as_str()) {
                return Err(ProcessError::DuplicateParameter { name: name.clone() });
            }
            match parameter.generate.as_deref() {
                // OpenShift treats an empty `generate` as none; `from` alone is ignored.
                None | Some("") => Ok(None),
                Some(EXPRESSION_GENERATOR) => {
                    let from = parameter.from.as_deref().unwrap_or_default();
                    if from.is_empty() {
                        return Err(ProcessError::MissingExpression {
                            parameter: name.clone(),
                        });
                    }
                    Expression::parse(from).map(Some).map_err(|error| match error {
                        ProcessError::InvalidExpression {
                            expression, reason, ..
                        } => ProcessError::InvalidExpression {
                            parameter: Some(name.clone()),
                            expression,
                            reason,
                        },
                        other => other,
                    })
                }
                Some(other) => Err(ProcessError::UnknownGenerator {
                    parameter: name.clone(),
                    generator: other.to_owned(),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameter(name: &str) -> Parameter {
        Parameter {
            name: name.to_owned(),
            ..Parameter::default()
        }
    }

    fn generated(name: &str, from: &str) -> Parameter {
        Parameter {
            generate: Some("expression".to_owned()),
            from: Some(from.to_owned()),
            ..parameter(name)
        }
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn run(parameters: &[Parameter], given: &[(&str, &str)]) -> Result<Vec<String>, String> {
        resolve(parameters, &values(given), false, &mut rand::rng())
            .map(|resolved| {
                resolved
                    .into_iter()
                    .map(|p| p.value.unwrap_or_default())
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn where_values_come_from() {
        let with_default = Parameter {
            value: Some("default".to_owned()),
            ..parameter("A")
        };
        let generated_with_default = Parameter {
            value: Some("default".to_owned()),
            ..generated("B", "[x]{3}")
        };
        let plain = parameter("C");
        let generated_only = generated("D", "[y]{2}");
        let all = [with_default, generated_with_default, plain, generated_only];

        assert_eq!(run(&all, &[]).unwrap(), ["default", "default", "", "yy"]);
        assert_eq!(
            run(&all, &[("A", "a"), ("B", "b"), ("C", "c"), ("D", "d")]).unwrap(),
            ["a", "b", "c", "d"],
            "a value given by the user wins and disables generation"
        );
        assert_eq!(
            run(&all, &[("A", ""), ("B", ""), ("C", ""), ("D", "")]).unwrap(),
            ["", "xxx", "", "yy"],
            "an empty value clears the default, and generated parameters are still generated"
        );
    }

    #[test]
    fn resolved_parameters_keep_their_declaration() {
        let declared = Parameter {
            display_name: Some("Password".to_owned()),
            description: Some("d".to_owned()),
            required: true,
            ..generated("PASSWORD", "[a]{4}")
        };
        let resolved = resolve(
            std::slice::from_ref(&declared),
            &BTreeMap::new(),
            false,
            &mut rand::rng(),
        )
        .unwrap();
        assert_eq!(
            resolved,
            [Parameter {
                value: Some("aaaa".to_owned()),
                ..declared
            }]
        );
    }

    #[test]
    fn required_parameters_need_a_value() {
        let required = Parameter {
            required: true,
            ..parameter("DATABASE_USER")
        };
        assert_eq!(
            run(std::slice::from_ref(&required), &[]).unwrap_err(),
            r#"required parameter "DATABASE_USER" has no value"#
        );
        assert_eq!(
            run(std::slice::from_ref(&required), &[("DATABASE_USER", "")]).unwrap_err(),
            r#"required parameter "DATABASE_USER" has no value"#
        );
        let other = Parameter {
            required: true,
            ..parameter("HOST")
        };
        assert_eq!(
            run(&[required.clone(), parameter("X"), other], &[]).unwrap_err(),
            r#"required parameters "DATABASE_USER", "HOST" have no value"#
        );
        assert_eq!(run(&[required], &[("DATABASE_USER", "u")]).unwrap(), ["u"]);
    }

    #[test]
    fn unknown_values_are_an_error_unless_ignored() {
        let declared = [parameter("A")];
        assert_eq!(
            run(&declared, &[("A", "1"), ("NOPE", "2")]).unwrap_err(),
            r#"unknown parameter "NOPE": the template does not declare it"#
        );
        assert_eq!(
            run(&declared, &[("Z", "1"), ("NOPE", "2")]).unwrap_err(),
            r#"unknown parameters "NOPE", "Z": the template does not declare them"#
        );
        let resolved = resolve(
            &declared,
            &values(&[("A", "1"), ("NOPE", "2")]),
            true,
            &mut rand::rng(),
        )
        .unwrap();
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].value.as_deref(), Some("1"));
    }

    #[test]
    fn declarations_are_checked() {
        assert_eq!(
            run(&[parameter("BAD-NAME")], &[]).unwrap_err(),
            r#"parameter name "BAD-NAME" is invalid: use only letters, digits and underscores"#
        );
        assert_eq!(
            run(&[parameter("")], &[]).unwrap_err(),
            r#"parameter name "" is invalid: use only letters, digits and underscores"#
        );
        assert_eq!(
            run(&[parameter("A"), parameter("B"), parameter("A")], &[]).unwrap_err(),
            r#"parameter "A" is declared more than once"#
        );
        let mut unknown_generator = generated("SECRET", "[a]{3}");
        unknown_generator.generate = Some("random".to_owned());
        assert_eq!(
            run(&[unknown_generator], &[("SECRET", "given")]).unwrap_err(),
            r#"parameter "SECRET": unknown generator "random" (the only generator is "expression")"#
        );
        let mut no_from = generated("SECRET", "");
        assert_eq!(
            run(&[no_from.clone()], &[]).unwrap_err(),
            r#"parameter "SECRET": generate is "expression" but from, the expression, is empty"#
        );
        no_from.from = None;
        assert_eq!(
            run(&[no_from], &[]).unwrap_err(),
            r#"parameter "SECRET": generate is "expression" but from, the expression, is empty"#
        );
        assert_eq!(
            run(&[generated("SECRET", "[Z-A]{3}")], &[("SECRET", "given")]).unwrap_err(),
            r#"parameter "SECRET": invalid generator expression "[Z-A]{3}": range Z-A is reversed"#
        );
        // An empty generate is no generator; from alone is ignored.
        let mut empty_generate = generated("A", "[Z-A]{3}");
        empty_generate.generate = Some(String::new());
        let from_only = Parameter {
            from: Some("[a]{3}".to_owned()),
            ..parameter("B")
        };
        assert_eq!(run(&[empty_generate, from_only], &[]).unwrap(), ["", ""]);
    }
}
