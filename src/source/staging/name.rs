//! The name a staged file gets: the client's base name, without directories or characters that would make
//! it awkward on disk. Its extension is kept because format detection starts from it.

pub fn safe_file_name(client_name: &str) -> String {
    let base = client_name.rsplit(['/', '\\']).next().unwrap_or("");
    let mapped: String = base.chars().map(|c| if c.is_control() || c == ' ' { '_' } else { c }).collect();
    let cleaned = mapped.trim_start_matches('.');
    let cleaned = &cleaned[..cleaned.floor_char_boundary(200)];
    if cleaned.is_empty() { "upload".to_string() } else { cleaned.to_string() }
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
