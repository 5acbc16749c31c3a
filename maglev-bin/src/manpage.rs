//! Man pages and shell completions from clap definitions, for all three
//! binaries: each has hidden `--man` and `--completions SHELL` flags that
//! print what [`render`] and [`completions`] make of its parser, so the
//! pages in `docs/man/` and the packages' completions can never disagree
//! with the flags (a test regenerates the pages and compares).

/// The hidden `--man` and `--completions SHELL` flags of maglevd and
/// maglevt (`#[command(flatten)]`).
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateFlags {
    /// Print a completion script for this shell (bash, zsh or fish) and
    /// exit.
    #[arg(long, value_name = "SHELL", hide = true)]
    pub completions: Option<clap_complete::Shell>,

    /// Print the man page (roff) and exit.
    #[arg(long, hide = true)]
    pub man: bool,
}

impl GenerateFlags {
    /// If a flag asked for it, the completion script or man page (in
    /// `section`, with `extra` sections) of `cmd`, the binary `name`.
    pub fn output(
        &self,
        cmd: clap::Command,
        name: &str,
        section: &str,
        extra: impl FnOnce() -> String,
    ) -> Option<String> {
        if let Some(shell) = self.completions {
            Some(completions(cmd, name, shell))
        } else if self.man {
            Some(render(cmd, section, &extra()))
        } else {
            None
        }
    }
}

/// Escapes `s` for roff: backslashes, hyphens, a leading dot or quote.
pub fn roff_escape(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// The man page of `cmd` in `section` (roff): title, name, synopsis,
/// description and options from clap, then `extra` (further `.SH`
/// sections, roff), then the version if `cmd` has one.
pub fn render(cmd: clap::Command, section: &str, extra: &str) -> String {
    // clap_mangen's version section unwraps the version.
    let has_version = cmd.get_version().is_some();
    let man = clap_mangen::Man::new(cmd)
        .section(section)
        .date(crate::BUILD_DATE);
    let mut buf = Vec::new();
    let sections = [
        clap_mangen::Man::render_title,
        clap_mangen::Man::render_name_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_options_section,
    ];
    for render in sections {
        // Writing to a Vec does not fail.
        let _ = render(&man, &mut buf);
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    s.push_str(extra);
    if has_version {
        let mut v = Vec::new();
        let _ = man.render_version_section(&mut v);
        s.push_str(&String::from_utf8_lossy(&v));
    }
    s
}

/// A `.TP` list entry: `term` in bold, then `text` (both escaped).
pub fn entry(term: &str, text: &str) -> String {
    format!(
        ".TP\n\\fB{}\\fR\n{}\n",
        roff_escape(term),
        roff_escape(text)
    )
}

/// A completion script of `cmd`, the binary `name`, for `shell`.
pub fn completions(mut cmd: clap::Command, name: &str, shell: clap_complete::Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_specials_are_escaped() {
        assert_eq!(roff_escape("--config"), "\\-\\-config");
        assert_eq!(roff_escape(".hidden"), "\\&.hidden");
        assert_eq!(roff_escape("a\\b"), "a\\eb");
    }

    #[test]
    fn a_page_has_its_section_options_and_extra() {
        let cmd = clap::Command::new("t")
            .about("a tool")
            .arg(clap::Arg::new("x").long("x").help("the x"));
        let page = render(cmd, "8", ".SH SIGNALS\n");
        assert!(
            page.starts_with(".ie") || page.contains(".TH t 8"),
            "{page}"
        );
        assert!(page.contains("\\-\\-x"));
        assert!(page.contains(".SH SIGNALS"));
    }
}
