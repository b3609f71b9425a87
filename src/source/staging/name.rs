//! The name a staged file gets: the client's base name, without directories or characters that would make
//! it awkward on disk. Its extension is kept because format detection starts from it.

pub fn safe_file_name(client_name: &str) -> String {
    let base = client_name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_control() || c == ' ' { '_' } else { c })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string();
    let cleaned = truncate_utf8(&cleaned, 200);
    if cleaned.is_empty() { "upload".to_string() } else { cleaned }
}

fn truncate_utf8(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_directories_and_spaces() {
        assert_eq!(safe_file_name("/home/me/prism tour.csv"), "prism_tour.csv");
        assert_eq!(safe_file_name("..\\..\\evil.csv"), "evil.csv");
        assert_eq!(safe_file_name("../.."), "upload");
        assert_eq!(safe_file_name(""), "upload");
        assert_eq!(safe_file_name("café.csv"), "café.csv");
    }
}
