//! The house has floors: docs/ARCHITECTURE.md lists the top-level modules of src/ from the ground up, and a
//! module may only use what stands below it (or in itself). This test reads every file of src/ with syn,
//! resolves each path it names (`use` items and paths in code, `crate::`, `super::` and `self::`; tests
//! excluded) to the file that defines it, and fails on any import that runs up the documented order, on any
//! top-level module the order forgets, and on any two files that import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The order docs/ARCHITECTURE.md gives, on its line that starts with "Floors, from the ground up:".
fn documented_floors(root: &Path) -> Vec<String> {
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let line = doc.lines().find(|l| l.starts_with("Floors, from the ground up:")).expect("the floors are listed");
    line.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// A file of src/ and the module path it defines (`src/load/mod.rs` is `["load"]`).
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
}

fn source_files(src: &Path) -> Vec<SourceFile> {
    let mut out = Vec::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // The binaries (main.rs, bin/) use the library from outside, as any crate would.
            if path.is_dir() && path != src.join("bin") {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && path != src.join("main.rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut module: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
                if module.last().is_some_and(|m| m == "mod" || m == "lib" || m == "main") {
                    module.pop();
                }
                out.push(SourceFile { path, module });
            }
        }
    }
    out
}

/// Every path a file names, as written (`crate::load::table::StagingTable`), outside `#[cfg(test)]` items.
#[derive(Default)]
struct Paths(Vec<Vec<String>>);

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string() == "test"))
}

fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => out.push([prefix.clone(), vec![n.ident.to_string()]].concat()),
        syn::UseTree::Rename(r) => out.push([prefix.clone(), vec![r.ident.to_string()]].concat()),
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| use_paths(t, prefix, out)),
    }
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        use_paths(&item.tree, &mut Vec::new(), &mut self.0);
    }

    // `pub(super)` names a module, but uses nothing of it
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.0.push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }
}

/// The file a path leads to, from the file of `module`; None for other crates and names of the file itself.
fn resolve(path: &[String], module: &[String], files: &BTreeMap<Vec<String>, usize>) -> Option<usize> {
    let (mut base, rest) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("self") => (module.to_vec(), &path[1..]),
        Some("super") => {
            // `super` in `a/b.rs` (module a::b) is `a`; chained supers climb further
            let mut base = module.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        // a child module named without `self::` (`use tabular::Plan` in load/mod.rs)
        Some(first) if files.contains_key(&[module, &[first.to_string()]].concat()) => (module.to_vec(), path),
        _ => return None,
    };
    let mut found = files.get(&base).copied();
    for segment in rest {
        base.push(segment.clone());
        match files.get(&base) {
            Some(&f) => found = Some(f),
            None => break,
        }
    }
    found
}

#[test]
fn no_module_imports_one_above_it_and_no_two_files_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let floors = documented_floors(root);
    let floor = |module: &[String]| module.first().and_then(|m| floors.iter().position(|f| f == m));
    let files = source_files(&root.join("src"));
    let by_module: BTreeMap<Vec<String>, usize> =
        files.iter().enumerate().map(|(i, f)| (f.module.clone(), i)).collect();

    let mut problems = BTreeSet::new();
    let mut edges: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for (i, file) in files.iter().enumerate() {
        let rel = file.path.strip_prefix(root).unwrap().display().to_string();
        if let Some(top) = file.module.first()
            && !floors.contains(top)
            && !["main", "lib"].contains(&rel.trim_start_matches("src/").trim_end_matches(".rs"))
        {
            problems.insert(format!("{rel}: `{top}` has no floor in docs/ARCHITECTURE.md"));
        }
        let syntax = syn::parse_file(&std::fs::read_to_string(&file.path).unwrap()).unwrap();
        let mut paths = Paths::default();
        paths.visit_file(&syntax);
        for path in &paths.0 {
            let Some(target) = resolve(path, &file.module, &by_module) else { continue };
            if target == i {
                continue;
            }
            edges.entry((i, target)).or_insert_with(|| path.join("::"));
            if let (Some(from), Some(to)) = (floor(&file.module), floor(&files[target].module))
                && to > from
            {
                problems.insert(format!("{rel}: `{}` is above `{}`", path.join("::"), floors[from]));
            }
        }
    }
    for (&(a, b), there) in &edges {
        if let Some(back) = edges.get(&(b, a))
            && a < b
        {
            let name = |f: usize| files[f].path.strip_prefix(root).unwrap().display().to_string();
            problems.insert(format!("{} and {} import each other (`{there}`, `{back}`)", name(a), name(b)));
        }
    }
    assert!(
        problems.is_empty(),
        "{} imports against the floors:\n{}",
        problems.len(),
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}
