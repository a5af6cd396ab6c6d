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
use quote::{format_ident, quote, quote_spanned};
use syn::{Attribute, Data, DeriveInput, Expr, Fields, Lit, Meta, Type, parse_macro_input};

/// `KINDS`: each kind's name, `Kind` variant and spec trait, from the table of kinds.
macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident $name:literal $spec:ident [$($section:tt)*] ),* $(,)?) => {
        const KINDS: &[(&str, &str, &str)] = &[$(($name, stringify!($variant), stringify!($spec))),*];
    };
}

include!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../stoker-core/src/kinds.in.rs"
));

/// Registers a spec struct as a named component of one kind.
///
/// Attribute: `#[component(KIND, name = "NAME")]`, where KIND is a kind of `stoker::registry::Kind`
/// as YAML spells it (`data`, `model`, `loss`, ...). The struct must implement the matching spec
/// trait (`ModelSpec` for `model`, ...), `serde::Deserialize` and `serde::Serialize`. A field
/// with `#[serde(flatten)]` (another struct's arguments, such as a trainer's `LoopArgs`) must
/// have a type that derives [`Args`]; its arguments are listed and checked as the struct's own.
#[proc_macro_derive(Component, attributes(component))]
pub fn derive_component(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Describes a struct's arguments (`stoker::registry::SpecArgs`) without registering it: for a
/// set of arguments that several components share through `#[serde(flatten)]`.
#[proc_macro_derive(Args)]
pub fn derive_args(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match args_impl(&input) {
        Ok((tokens, _)) => tokens.into(),
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
        if KINDS.iter().any(|(k, _, _)| *k == ident) {
            kind = Some(ident);
            Ok(())
        } else {
            let known: Vec<&str> = KINDS.iter().map(|(k, _, _)| *k).collect();
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

/// What the derive reads of `#[serde(...)]` attributes.
struct SerdeOptions {
    /// `default` or `default = "path"`.
    default: SerdeDefault,
    /// `flatten`.
    flatten: bool,
    /// `deny_unknown_fields`.
    deny_unknown_fields: bool,
}

fn serde_options(attrs: &[Attribute]) -> syn::Result<SerdeOptions> {
    let mut options = SerdeOptions {
        default: SerdeDefault::None,
        flatten: false,
        deny_unknown_fields: false,
    };
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") {
                options.default = if meta.input.peek(syn::Token![=]) {
                    let value: syn::LitStr = meta.value()?.parse()?;
                    SerdeDefault::Path(value.parse()?)
                } else {
                    SerdeDefault::Trait
                };
            } else if meta.path.is_ident("flatten") {
                options.flatten = true;
            } else if meta.path.is_ident("deny_unknown_fields") {
                options.deny_unknown_fields = true;
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
    Ok(options)
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

/// The `SpecArgs` impl of a struct, and the types of its `#[serde(flatten)]` fields.
fn args_impl(input: &DeriveInput) -> syn::Result<(TokenStream2, Vec<Type>)> {
    let ident = &input.ident;
    let struct_options = serde_options(&input.attrs)?;
    let struct_default = matches!(struct_options.default, SerdeDefault::Trait);
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

    let mut pushes = Vec::new();
    let mut flattened = Vec::new();
    for field in fields {
        let field_ident = field.ident.as_ref().unwrap();
        let ty = &field.ty;
        let options = serde_options(&field.attrs)?;
        if options.flatten {
            pushes.push(quote! {
                args.extend(<#ty as ::stoker::registry::SpecArgs>::args());
            });
            flattened.push(ty.clone());
            continue;
        }
        let field_name = field_ident.to_string();
        let ty_text = type_text(ty);
        let doc = first_paragraph(&doc_text(&field.attrs));
        let default = match options.default {
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
        pushes.push(quote! {
            args.push(::stoker::registry::ArgInfo {
                name: #field_name,
                ty: #ty_text,
                doc: #doc,
                default: #default,
            });
        });
    }
    if !flattened.is_empty() && struct_options.deny_unknown_fields {
        return Err(syn::Error::new_spanned(
            ident,
            "serde does not support `deny_unknown_fields` with `flatten`; leave it out: \
             unknown arguments are refused all the same",
        ));
    }
    let tokens = quote! {
        impl ::stoker::registry::SpecArgs for #ident {
            fn args() -> ::std::vec::Vec<::stoker::registry::ArgInfo> {
                #[allow(unused_mut)]
                let mut args = ::std::vec::Vec::new();
                #(#pushes)*
                args
            }
        }
    };
    Ok((tokens, flattened))
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let attr = parse_component_attr(input)?;
    let ident = &input.ident;
    let (_, variant, _) = KINDS.iter().find(|(k, _, _)| *k == attr.kind).unwrap();
    let kind_variant = format_ident!("{}", variant);
    let description = first_paragraph(&doc_text(&input.attrs));
    if description.is_empty() {
        return Err(syn::Error::new_spanned(
            ident,
            "a component needs a doc comment: its first paragraph is the description `list` prints",
        ));
    }
    let name = &attr.name;
    let (args_impl, flattened) = args_impl(input)?;
    let parse_args = if flattened.is_empty() {
        quote! { ::stoker::registry::parse_args::<#ident>(args)? }
    } else {
        quote! {
            ::stoker::registry::parse_flattened::<#ident>(
                args,
                &<#ident as ::stoker::registry::SpecArgs>::args(),
                &[#(::stoker::registry::check_flattened_part::<#flattened>),*],
            )?
        }
    };

    let parse_fn = format_ident!("__stoker_parse_{}", ident);
    let file = quote_spanned! {ident.span()=> ::core::file!() };
    let line = quote_spanned! {ident.span()=> ::core::line!() };
    Ok(quote! {
        #args_impl

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #parse_fn(
            args: ::stoker::__private::serde_yaml::Value,
        ) -> ::core::result::Result<::stoker::registry::ParsedSpec, ::stoker::registry::ArgsError> {
            let (spec, resolved) = #parse_args;
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
                file: #file,
                line: #line,
                description: #description,
                args: <#ident as ::stoker::registry::SpecArgs>::args,
                parse: #parse_fn,
            }
        }
    })
}
