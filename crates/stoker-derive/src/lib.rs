//! `#[derive(Component)]`: registers a spec struct as a named stoker component.
//!
//! ```ignore
//! /// A multi-layer perceptron.
//! #[derive(Debug, Clone, Serialize, Deserialize, Component)]
//! #[serde(deny_unknown_fields)]
//! #[component(model, name = "MLP")]
//! pub struct MlpSpec {
//!     /// Layer widths, input first.
//!     pub sizes: Vec<usize>,
//! }
//! impl ModelSpec for MlpSpec { /* build */ }
//! ```
//!
//! The derive reads the struct's doc comment (the component's description), each field's doc
//! comment, type and serde default (the argument table `cargo xtask list` prints), and submits a
//! registration to the `inventory` collected by `stoker::registry`. The generated code names
//! paths under `::stoker`, so the crate using it depends on the `stoker` facade.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::{Attribute, Data, DeriveInput, Expr, Fields, Lit, Meta, Type, parse_macro_input};

const KINDS: &[(&str, &str)] = &[
    ("data", "Data"),
    ("model", "Model"),
    ("loss", "Loss"),
    ("metric", "Metric"),
    ("optimizer", "Optimizer"),
    ("scheduler", "Scheduler"),
    ("trainer", "Trainer"),
    ("callback", "Callback"),
    ("physics", "Physics"),
    ("logger", "Logger"),
    ("augmentation", "Augmentation"),
];

/// Registers a spec struct as a named component of one kind.
///
/// Attribute: `#[component(KIND, name = "NAME")]`, where KIND is one of `data`, `model`, `loss`,
/// `metric`, `optimizer`, `scheduler`, `trainer`, `callback`, `physics`, `logger`, `augmentation`. The struct must implement
/// the matching spec trait (`ModelSpec` for `model`, ...), `serde::Deserialize` and
/// `serde::Serialize`.
#[proc_macro_derive(Component, attributes(component))]
pub fn derive_component(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

struct ComponentAttr {
    kind: String,
    name: String,
}

fn parse_component_attr(input: &DeriveInput) -> syn::Result<ComponentAttr> {
    let attr = input
        .attrs
        .iter()
        .find(|a| a.path().is_ident("component"))
        .ok_or_else(|| {
            syn::Error::new_spanned(
                &input.ident,
                "missing #[component(KIND, name = \"NAME\")] attribute",
            )
        })?;
    let mut kind = None;
    let mut name = None;
    attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("name") {
            let value: syn::LitStr = meta.value()?.parse()?;
            name = Some(value.value());
            return Ok(());
        }
        let ident = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        if KINDS.iter().any(|(k, _)| *k == ident) {
            kind = Some(ident);
            Ok(())
        } else {
            let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
            Err(meta.error(format!(
                "unknown component kind; expected one of {}",
                known.join(", ")
            )))
        }
    })?;
    Ok(ComponentAttr {
        kind: kind.ok_or_else(|| syn::Error::new_spanned(attr, "missing component kind"))?,
        name: name.ok_or_else(|| syn::Error::new_spanned(attr, "missing name = \"...\""))?,
    })
}

/// The text of the `///` comments in `attrs`, lines joined with newlines.
fn doc_text(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(nv) = &attr.meta
            && let Expr::Lit(expr) = &nv.value
            && let Lit::Str(s) = &expr.lit
        {
            let line = s.value();
            lines.push(line.strip_prefix(' ').unwrap_or(&line).to_string());
        }
    }
    lines.join("\n").trim().to_string()
}

/// The first paragraph of a doc comment, on one line.
fn first_paragraph(doc: &str) -> String {
    doc.split("\n\n")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// How serde fills in a missing field.
enum SerdeDefault {
    None,
    Trait,
    Path(syn::ExprPath),
}

fn serde_default(attrs: &[Attribute]) -> syn::Result<SerdeDefault> {
    let mut result = SerdeDefault::None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") {
                if meta.input.peek(syn::Token![=]) {
                    let value: syn::LitStr = meta.value()?.parse()?;
                    result = SerdeDefault::Path(value.parse()?);
                } else {
                    result = SerdeDefault::Trait;
                }
            } else if meta.input.peek(syn::Token![=]) {
                // Another `key = value` serde option: consume its value.
                let _: Expr = meta.value()?.parse()?;
            } else if meta.input.peek(syn::token::Paren) {
                let _content;
                syn::parenthesized!(_content in meta.input);
                let _: TokenStream2 = _content.parse()?;
            }
            Ok(())
        })?;
    }
    Ok(result)
}

fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none()
        && p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}

/// A type as a user reads it: `Vec<usize>`, `Option<f64>`.
fn type_text(ty: &Type) -> String {
    let raw = quote!(#ty).to_string();
    let mut out = String::new();
    for c in raw.chars() {
        if c == ' ' {
            continue;
        }
        out.push(c);
        if c == ',' {
            out.push(' ');
        }
    }
    out
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let attr = parse_component_attr(input)?;
    let ident = &input.ident;
    let kind_variant = format_ident!("{}", KINDS.iter().find(|(k, _)| *k == attr.kind).unwrap().1);
    let description = first_paragraph(&doc_text(&input.attrs));
    if description.is_empty() {
        return Err(syn::Error::new_spanned(
            ident,
            "a component needs a doc comment: its first paragraph is the description `list` prints",
        ));
    }
    let name = &attr.name;
    let struct_default = matches!(serde_default(&input.attrs)?, SerdeDefault::Trait);

    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named.named.iter().collect::<Vec<_>>(),
            Fields::Unit => Vec::new(),
            Fields::Unnamed(_) => {
                return Err(syn::Error::new_spanned(
                    ident,
                    "a component spec has named fields (its YAML arguments)",
                ));
            }
        },
        _ => {
            return Err(syn::Error::new_spanned(
                ident,
                "a component spec is a struct",
            ));
        }
    };

    let mut arg_infos = Vec::new();
    for field in fields {
        let field_ident = field.ident.as_ref().unwrap();
        let field_name = field_ident.to_string();
        let ty = &field.ty;
        let ty_text = type_text(ty);
        let doc = first_paragraph(&doc_text(&field.attrs));
        let default = match serde_default(&field.attrs)? {
            SerdeDefault::Path(path) => quote! {
                ::core::option::Option::Some(::stoker::registry::default_text(&#path()))
            },
            SerdeDefault::Trait => quote! {
                ::core::option::Option::Some(::stoker::registry::default_text(
                    &<#ty as ::core::default::Default>::default()))
            },
            SerdeDefault::None if struct_default => quote! {
                ::core::option::Option::Some(::stoker::registry::default_text(
                    &<#ident as ::core::default::Default>::default().#field_ident))
            },
            SerdeDefault::None if is_option(ty) => quote! {
                ::core::option::Option::Some(::std::string::String::from("null"))
            },
            SerdeDefault::None => quote! { ::core::option::Option::None },
        };
        arg_infos.push(quote! {
            ::stoker::registry::ArgInfo {
                name: #field_name,
                ty: #ty_text,
                doc: #doc,
                default: #default,
            }
        });
    }

    let parse_fn = format_ident!("__stoker_parse_{}", ident);
    let args_fn = format_ident!("__stoker_args_{}", ident);
    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #args_fn() -> ::std::vec::Vec<::stoker::registry::ArgInfo> {
            ::std::vec![#(#arg_infos),*]
        }

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #parse_fn(
            args: ::stoker::__private::serde_yaml::Value,
        ) -> ::core::result::Result<::stoker::registry::ParsedSpec, ::stoker::registry::ArgsError> {
            let (spec, resolved) = ::stoker::registry::parse_args::<#ident>(args)?;
            ::core::result::Result::Ok(::stoker::registry::ParsedSpec {
                spec: ::stoker::registry::AnySpec::#kind_variant(::std::boxed::Box::new(spec)),
                resolved,
            })
        }

        ::stoker::__private::inventory::submit! {
            ::stoker::registry::Registration {
                kind: ::stoker::registry::Kind::#kind_variant,
                name: #name,
                crate_name: ::core::env!("CARGO_PKG_NAME"),
                description: #description,
                args: #args_fn,
                parse: #parse_fn,
            }
        }
    })
}
