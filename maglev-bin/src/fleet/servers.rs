//! `--server` as a list: `a:9090,b:9090`, each optionally `name=addr`.

/// One listed server: the name fleet views show, and its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// `name` of `name=addr`, else the address itself.
    pub name: String,
    /// The address, `host:port` (or a URI).
    pub addr: String,
}

/// Parses a comma-separated server list; spaces around items are
/// ignored. An empty item, an empty name or address, or a name given
/// twice is an error naming it.
pub fn parse(list: &str) -> Result<Vec<Listed>, String> {
    let mut out: Vec<Listed> = Vec::new();
    for (i, item) in list.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!(
                "--server \"{list}\": item {} is empty (give host:port or name=host:port, comma-separated)",
                i + 1
            ));
        }
        let (name, addr) = match item.split_once('=') {
            Some((n, a)) => (n.trim(), a.trim()),
            None => (item, item),
        };
        if name.is_empty() || addr.is_empty() {
            return Err(format!(
                "--server \"{list}\": \"{item}\" needs both a name and an address (name=host:port)"
            ));
        }
        if out.iter().any(|l| l.name == name) {
            return Err(format!("--server \"{list}\": \"{name}\" is listed twice"));
        }
        out.push(Listed {
            name: name.to_owned(),
            addr: addr.to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(name: &str, addr: &str) -> Listed {
        Listed {
            name: name.into(),
            addr: addr.into(),
        }
    }

    #[test]
    fn one_server_is_a_list_of_one_named_by_its_address() {
        assert_eq!(
            parse("localhost:9090").unwrap(),
            vec![l("localhost:9090", "localhost:9090")]
        );
    }

    #[test]
    fn names_and_spaces() {
        assert_eq!(
            parse("a=10.0.0.1:9090, b:9090").unwrap(),
            vec![l("a", "10.0.0.1:9090"), l("b:9090", "b:9090")]
        );
    }

    #[test]
    fn bad_lists_are_named() {
        assert!(parse("a:1,,b:1").unwrap_err().contains("item 2 is empty"));
        assert!(parse("=a:1").unwrap_err().contains("needs both"));
        assert!(
            parse("x=a:1,x=b:1")
                .unwrap_err()
                .contains("\"x\" is listed twice")
        );
    }
}
