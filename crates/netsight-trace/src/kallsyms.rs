//! Kernel addresses to "function+0xoffset" from kallsyms (root sees real addresses).

#[derive(Debug, Default)]
pub struct Kallsyms {
    /// Sorted by address.
    symbols: Vec<(u64, String)>,
}

impl Kallsyms {
    pub fn load() -> Kallsyms {
        Kallsyms::parse(&netsight_kernel::kernel_image::kallsyms().unwrap_or_default())
    }

    pub fn parse(text: &str) -> Kallsyms {
        let mut symbols: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let kind = f.next()?;
                let name = f.next()?;
                (addr != 0 && matches!(kind, "t" | "T")).then(|| (addr, name.to_string()))
            })
            .collect();
        symbols.sort();
        Kallsyms { symbols }
    }

    /// "kfree_skb_reason+0x3c", or the hex address when unknown (no root: zeros).
    pub fn name(&self, addr: u64) -> String {
        let i = self.symbols.partition_point(|(a, _)| *a <= addr);
        match i.checked_sub(1).and_then(|i| self.symbols.get(i)) {
            Some((a, name)) => format!("{name}+{:#x}", addr - a),
            None => format!("{addr:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_offsets() {
        let k = Kallsyms::parse(
            "ffffffff81000000 T _stext\nffffffff81000100 t udp_rcv\nffffffff81000200 D some_data\n",
        );
        assert_eq!(k.name(0xffffffff81000104), "udp_rcv+0x4");
        assert_eq!(k.name(0xffffffff81000000), "_stext+0x0");
        assert_eq!(k.name(0x10), "0x10");
    }
}
