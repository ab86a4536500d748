//! Go: each `go.mod`'s module path; an edge where `require` names another
//! module of the repository or `replace` points at one's directory.

use std::collections::{BTreeSet, HashMap};

use super::{Ecosystem, Group, Package, flat, join};
use crate::repomap::read::{Text, dir};

/// What the map needs of a `go.mod`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GoMod {
    pub module: Option<String>,
    pub requires: Vec<String>,
    /// Replacement targets that are local paths.
    pub local_replaces: Vec<String>,
}

/// Reads `module`, `require` and `replace` directives, single or in blocks.
pub(crate) fn parse_go_mod(text: &str) -> GoMod {
    let mut out = GoMod::default();
    let mut block: Option<&str> = None;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (verb, rest) = match block {
            Some(_) if line == ")" => {
                block = None;
                continue;
            }
            Some(verb) => (verb, line),
            None => {
                let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                if rest == "(" {
                    block = Some(verb);
                    continue;
                }
                (verb, rest)
            }
        };
        let unquote = |s: &str| s.trim_matches('"').to_string();
        match verb {
            "module" => out.module = Some(unquote(rest)),
            "require" => {
                if let Some(path) = rest.split_whitespace().next() {
                    out.requires.push(unquote(path));
                }
            }
            "replace" => {
                if let Some((_, to)) = rest.split_once("=>")
                    && let Some(to) = to.split_whitespace().next()
                    && (to.starts_with("./") || to.starts_with("../"))
                {
                    out.local_replaces.push(to.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

pub(super) fn groups(manifests: &[&Text]) -> Vec<Group> {
    let modules: Vec<(String, GoMod)> = manifests
        .iter()
        .map(|m| (dir(&m.path).to_string(), parse_go_mod(&m.text)))
        .collect();
    let by_path: HashMap<&str, &str> = modules
        .iter()
        .filter_map(|(d, m)| Some((m.module.as_deref()?, d.as_str())))
        .collect();
    let by_dir: HashMap<&str, &str> = modules
        .iter()
        .filter_map(|(d, m)| Some((d.as_str(), m.module.as_deref()?)))
        .collect();
    let mut packages = Vec::new();
    for (dir, module) in &modules {
        let Some(name) = &module.module else {
            continue;
        };
        let mut deps: BTreeSet<String> = module
            .requires
            .iter()
            .filter(|r| by_path.contains_key(r.as_str()))
            .cloned()
            .collect();
        for to in &module.local_replaces {
            if let Some(dep) = join(dir, to).as_deref().and_then(|d| by_dir.get(d)) {
                deps.insert(dep.to_string());
            }
        }
        deps.remove(name);
        packages.push(Package {
            name: name.clone(),
            dir: dir.clone(),
            deps: deps.into_iter().collect(),
        });
    }
    flat(Ecosystem::Go, &packages)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{lines, scan_of};
    use super::*;

    #[test]
    fn go_modules_require_and_replace() {
        let parsed = parse_go_mod(
            "module example.com/app // the app\n\ngo 1.22\n\nrequire (\n\texample.com/lib v0.0.0\n\
             \tgolang.org/x/text v0.14.0 // indirect\n)\nrequire example.com/other v1.0.0\n\
             replace example.com/lib => ../lib\nreplace (\n\texample.com/x v1 => example.com/y v2\n)\n",
        );
        assert_eq!(
            parsed,
            GoMod {
                module: Some("example.com/app".into()),
                requires: vec![
                    "example.com/lib".into(),
                    "golang.org/x/text".into(),
                    "example.com/other".into()
                ],
                local_replaces: vec!["../lib".into()],
            }
        );
        let packages = scan_of(&[
            (
                "app/go.mod",
                "module example.com/app\nrequire example.com/util v1.0.0\nreplace example.com/lib => ../lib\n",
            ),
            ("lib/go.mod", "module example.com/lib\n"),
            ("util/go.mod", "module \"example.com/util\"\n"),
        ]);
        assert_eq!(
            lines(&packages),
            [
                "Go None",
                "  example.com/app (app) -> example.com/lib,example.com/util",
                "  example.com/lib (lib) -> ",
                "  example.com/util (util) -> ",
            ]
        );
    }
}
