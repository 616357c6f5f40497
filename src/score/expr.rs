//! A small LaTeX/plain math expression parser and complex evaluator, for judging
//! two answers equal by evaluating them at the same random points.
//!
//! Bounded by construction: inputs over [`MAX_LEN`] bytes and nesting deeper than
//! [`MAX_DEPTH`] are refused (the caller falls back to comparing strings), and
//! evaluation is one pass over a tree of at most `MAX_LEN` nodes, so no input
//! can make it hang or overflow the stack.

use num_complex::Complex64 as C;

pub const MAX_LEN: usize = 2000;
pub const MAX_DEPTH: usize = 200;

/// Functions the parser knows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Func {
    Sqrt,
    Sin,
    Cos,
    Tan,
    Sec,
    Csc,
    Cot,
    Asin,
    Acos,
    Atan,
    Ln,
    Log,
    Exp,
    Abs,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Num(C),
    Var(usize),
    Neg(Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Fact(Box<Expr>),
    Call(Func, Box<Expr>),
}

/// A parsed expression and the names of its free variables (indices of `Var`).
#[derive(Clone, Debug)]
pub struct Parsed {
    pub expr: Expr,
    pub vars: Vec<String>,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
    vars: Vec<String>,
}

type R<T> = Result<T, ()>;

/// Parses `text` (already normalised: no `$`, `\left`, `\text`, ...).
pub fn parse(text: &str) -> Option<Parsed> {
    if text.len() > MAX_LEN || text.trim().is_empty() {
        return None;
    }
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
        vars: Vec::new(),
    };
    let e = p.expr().ok()?;
    p.ws();
    if p.i != p.s.len() {
        return None;
    }
    Some(Parsed {
        expr: e,
        vars: p.vars,
    })
}

fn bx(e: Expr) -> Box<Expr> {
    Box::new(e)
}

const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Sigma",
    "Phi",
    "Psi",
    "Omega",
];

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// The name of a `\command` at the cursor, without consuming it.
    fn command(&mut self) -> Option<&str> {
        self.ws();
        if self.s.get(self.i) != Some(&b'\\') {
            return None;
        }
        let start = self.i + 1;
        let mut j = start;
        while j < self.s.len() && self.s[j].is_ascii_alphabetic() {
            j += 1;
        }
        std::str::from_utf8(&self.s[start..j]).ok()
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(())
        } else {
            Ok(())
        }
    }

    fn expr(&mut self) -> R<Expr> {
        self.enter()?;
        let mut lhs = self.term()?;
        loop {
            if self.eat(b'+') {
                lhs = Expr::Add(bx(lhs), bx(self.term()?));
            } else if self.eat(b'-') {
                lhs = Expr::Sub(bx(lhs), bx(self.term()?));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(lhs)
    }

    /// Whether the next token can start an operand (for implicit products).
    fn starts_atom(&mut self) -> bool {
        match self.peek() {
            Some(b) if b.is_ascii_alphanumeric() || b == b'(' || b == b'{' || b == b'.' => true,
            Some(b'[') => true,
            Some(b'\\') => !matches!(
                self.command(),
                Some(
                    "cdot"
                        | "times"
                        | "div"
                        | "right"
                        | "cup"
                        | "cap"
                        | "pm"
                        | "mp"
                        | "le"
                        | "ge"
                        | "leq"
                        | "geq"
                ) | Some("")
            ),
            _ => false,
        }
    }

    fn term(&mut self) -> R<Expr> {
        self.enter()?;
        let mut lhs = self.unary()?;
        loop {
            if self.eat(b'*') {
                lhs = Expr::Mul(bx(lhs), bx(self.unary()?));
            } else if self.eat(b'/') {
                lhs = Expr::Div(bx(lhs), bx(self.unary()?));
            } else if let Some(c @ ("cdot" | "times" | "div")) = self.command() {
                let div = c == "div";
                self.i += 1 + c.len();
                let rhs = self.unary()?;
                lhs = if div {
                    Expr::Div(bx(lhs), bx(rhs))
                } else {
                    Expr::Mul(bx(lhs), bx(rhs))
                };
            } else if self.starts_atom() {
                lhs = Expr::Mul(bx(lhs), bx(self.power()?));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn unary(&mut self) -> R<Expr> {
        self.enter()?;
        let e = if self.eat(b'-') {
            Expr::Neg(bx(self.unary()?))
        } else if self.eat(b'+') {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn power(&mut self) -> R<Expr> {
        self.enter()?;
        let mut base = self.atom()?;
        loop {
            if self.eat(b'!') {
                base = Expr::Fact(bx(base));
            } else if self.eat(b'^') {
                let exp = self.script()?;
                base = Expr::Pow(bx(base), bx(exp));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(base)
    }

    /// An exponent or a bare `\frac`/`\sqrt` argument: a braced group, or one
    /// character/number/command (`x^2`, `x^{10}`, `\frac12`, `2^-1`).
    fn script(&mut self) -> R<Expr> {
        self.enter()?;
        let e = match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let e = self.expr()?;
                if !self.eat(b'}') {
                    return Err(());
                }
                e
            }
            Some(b'-') => {
                self.i += 1;
                Expr::Neg(bx(self.script()?))
            }
            Some(b) if b.is_ascii_digit() => {
                self.i += 1;
                Expr::Num(C::new(f64::from(b - b'0'), 0.0))
            }
            Some(_) => self.atom()?,
            None => return Err(()),
        };
        self.depth -= 1;
        Ok(e)
    }

    fn group(&mut self, close: u8) -> R<Expr> {
        let e = self.expr()?;
        if !self.eat(close) {
            return Err(());
        }
        Ok(e)
    }

    fn number(&mut self) -> R<Expr> {
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'.') {
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| ())?;
        let v: f64 = t.parse().map_err(|_| ())?;
        // A mixed number `2\frac{1}{2}` (MATH's convention) is 2 + 1/2, not 2 * 1/2.
        if !t.contains('.')
            && let Some(f) = self.proper_fraction()
        {
            return Ok(Expr::Num(C::new(v + f, 0.0)));
        }
        Ok(Expr::Num(C::new(v, 0.0)))
    }

    /// Consumes `\frac{p}{q}` with integer literals p < q, if that comes next.
    fn proper_fraction(&mut self) -> Option<f64> {
        let save = self.i;
        self.ws();
        let rest = std::str::from_utf8(&self.s[self.i..]).ok()?;
        let parse = || -> Option<(f64, f64, usize)> {
            let r = rest.strip_prefix("\\frac{")?;
            let close = r.find('}')?;
            let p: u64 = r[..close].trim().parse().ok()?;
            let r2 = r[close + 1..].strip_prefix('{')?;
            let close2 = r2.find('}')?;
            let q: u64 = r2[..close2].trim().parse().ok()?;
            let used = "\\frac{".len() + close + 2 + close2 + 1;
            (q > 0 && p < q).then_some((p as f64, q as f64, used))
        };
        match parse() {
            Some((p, q, used)) => {
                self.i += used;
                Some(p / q)
            }
            None => {
                self.i = save;
                None
            }
        }
    }

    fn var(&mut self, name: String) -> Expr {
        // Subscripts make distinct names: `x_1`, `a_{12}`.
        let mut name = name;
        if self.s.get(self.i) == Some(&b'_') {
            let start = self.i;
            self.i += 1;
            if self.s.get(self.i) == Some(&b'{') {
                let mut depth = 0usize;
                while self.i < self.s.len() {
                    match self.s[self.i] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            } else if self.i < self.s.len() {
                self.i += 1;
            }
            name.push_str(std::str::from_utf8(&self.s[start..self.i]).unwrap_or("_"));
        }
        let idx = match self.vars.iter().position(|v| *v == name) {
            Some(k) => k,
            None => {
                self.vars.push(name);
                self.vars.len() - 1
            }
        };
        Expr::Var(idx)
    }

    fn func_arg(&mut self, f: Func) -> R<Expr> {
        // `\sin^2 x` means (sin x)^2.
        let mut pow = None;
        if self.eat(b'^') {
            pow = Some(self.script()?);
        }
        let arg = match self.peek() {
            Some(b'(') => {
                self.i += 1;
                self.group(b')')?
            }
            Some(b'{') => {
                self.i += 1;
                self.group(b'}')?
            }
            _ => self.power()?,
        };
        let call = Expr::Call(f, bx(arg));
        Ok(match pow {
            Some(p) => Expr::Pow(bx(call), bx(p)),
            None => call,
        })
    }

    fn atom(&mut self) -> R<Expr> {
        self.enter()?;
        let b = self.peek().ok_or(())?;
        let e = match b {
            b'0'..=b'9' | b'.' => self.number()?,
            b'(' => {
                self.i += 1;
                self.group(b')')?
            }
            b'[' => {
                self.i += 1;
                self.group(b']')?
            }
            b'{' => {
                self.i += 1;
                self.group(b'}')?
            }
            b'|' => {
                self.i += 1;
                Expr::Call(Func::Abs, bx(self.group(b'|')?))
            }
            b'\\' => {
                let name = self.command().ok_or(())?.to_string();
                self.i += 1 + name.len();
                match name.as_str() {
                    "frac" | "dfrac" | "tfrac" => {
                        let n = self.script()?;
                        let d = self.script()?;
                        Expr::Div(bx(n), bx(d))
                    }
                    "sqrt" => {
                        let mut root = None;
                        if self.eat(b'[') {
                            root = Some(self.group(b']')?);
                        }
                        let a = self.script()?;
                        match root {
                            Some(r) => Expr::Pow(
                                bx(a),
                                bx(Expr::Div(bx(Expr::Num(C::new(1.0, 0.0))), bx(r))),
                            ),
                            None => Expr::Call(Func::Sqrt, bx(a)),
                        }
                    }
                    "pi" => Expr::Num(C::new(std::f64::consts::PI, 0.0)),
                    "infty" | "infinity" => Expr::Num(C::new(f64::INFINITY, 0.0)),
                    "sin" => self.func_arg(Func::Sin)?,
                    "cos" => self.func_arg(Func::Cos)?,
                    "tan" => self.func_arg(Func::Tan)?,
                    "sec" => self.func_arg(Func::Sec)?,
                    "csc" => self.func_arg(Func::Csc)?,
                    "cot" => self.func_arg(Func::Cot)?,
                    "arcsin" => self.func_arg(Func::Asin)?,
                    "arccos" => self.func_arg(Func::Acos)?,
                    "arctan" => self.func_arg(Func::Atan)?,
                    "ln" => self.func_arg(Func::Ln)?,
                    "log" => self.func_arg(Func::Log)?,
                    "exp" => self.func_arg(Func::Exp)?,
                    "lvert" | "vert" => Expr::Call(Func::Abs, bx(self.group(b'|')?)),
                    g if GREEK.contains(&g) => self.var(g.to_string()),
                    _ => return Err(()),
                }
            }
            b if b.is_ascii_alphabetic() => {
                self.i += 1;
                if b == b'i' && self.s.get(self.i) != Some(&b'_') {
                    // MATH answers use `i` for the imaginary unit.
                    Expr::Num(C::new(0.0, 1.0))
                } else {
                    self.var((b as char).to_string())
                }
            }
            _ => return Err(()),
        };
        self.depth -= 1;
        Ok(e)
    }
}

fn factorial(z: C) -> C {
    let n = z.re;
    if z.im != 0.0 || n < 0.0 || n != n.trunc() || n > 170.0 {
        return C::new(f64::NAN, 0.0);
    }
    C::new((1..=n as u64).fold(1.0, |a, k| a * k as f64), 0.0)
}

/// Evaluates `e` with variable values `x`.
pub fn eval(e: &Expr, x: &[C]) -> C {
    match e {
        Expr::Num(v) => *v,
        Expr::Var(i) => x.get(*i).copied().unwrap_or(C::new(f64::NAN, 0.0)),
        Expr::Neg(a) => -eval(a, x),
        Expr::Add(a, b) => eval(a, x) + eval(b, x),
        Expr::Sub(a, b) => eval(a, x) - eval(b, x),
        Expr::Mul(a, b) => eval(a, x) * eval(b, x),
        Expr::Div(a, b) => eval(a, x) / eval(b, x),
        Expr::Pow(a, b) => {
            let (a, b) = (eval(a, x), eval(b, x));
            if b.im == 0.0 && b.re == b.re.trunc() && b.re.abs() <= 64.0 {
                a.powi(b.re as i32)
            } else if a.im == 0.0 && a.re >= 0.0 && b.im == 0.0 {
                C::new(a.re.powf(b.re), 0.0)
            } else {
                a.powc(b)
            }
        }
        Expr::Fact(a) => factorial(eval(a, x)),
        Expr::Call(f, a) => {
            let v = eval(a, x);
            match f {
                Func::Sqrt => v.sqrt(),
                Func::Sin => v.sin(),
                Func::Cos => v.cos(),
                Func::Tan => v.tan(),
                Func::Sec => v.cos().inv(),
                Func::Csc => v.sin().inv(),
                Func::Cot => v.tan().inv(),
                Func::Asin => v.asin(),
                Func::Acos => v.acos(),
                Func::Atan => v.atan(),
                Func::Ln => v.ln(),
                Func::Log => v.log10(),
                Func::Exp => v.exp(),
                Func::Abs => C::new(v.norm(), 0.0),
            }
        }
    }
}

fn close(a: C, b: C, tol: f64) -> bool {
    if a == b {
        return true;
    }
    if !(a.re.is_finite() && a.im.is_finite() && b.re.is_finite() && b.im.is_finite()) {
        return false;
    }
    (a - b).norm() <= tol * a.norm().max(b.norm()).max(1e-9)
}

/// Deterministic sample points (so verdicts are reproducible): mostly positive
/// reals away from 0 and 1, where answers' usual domains (roots, logs) hold.
const POINTS: [f64; 7] = [
    0.6180339, 1.4150, 2.7310, 0.3819660, 1.7320508, 3.1622776, 0.8660254,
];

/// Whether two parsed expressions are equal as functions: equal at every sample
/// point where both are finite, with at least three such points (one for
/// constants).
pub fn equal(a: &Parsed, b: &Parsed, tol: f64) -> Option<bool> {
    // Map both sides' variables into one namespace.
    let mut names: Vec<&str> = a.vars.iter().map(String::as_str).collect();
    for v in &b.vars {
        if !names.contains(&v.as_str()) {
            names.push(v);
        }
    }
    let map_b: Vec<usize> = b
        .vars
        .iter()
        .map(|v| names.iter().position(|n| n == v).unwrap_or(0))
        .collect();
    if names.is_empty() {
        let (x, y) = (eval(&a.expr, &[]), eval(&b.expr, &[]));
        if x.re.is_nan() || y.re.is_nan() {
            return None;
        }
        if x.re.is_infinite() || y.re.is_infinite() {
            return Some(x == y);
        }
        return Some(close(x, y, tol));
    }
    let mut agree = 0;
    for k in 0..POINTS.len() {
        let vals: Vec<C> = (0..names.len())
            .map(|j| C::new(POINTS[(k + 3 * j) % POINTS.len()] + 0.37 * j as f64, 0.0))
            .collect();
        let xa: Vec<C> = (0..a.vars.len()).map(|j| vals[j]).collect();
        let xb: Vec<C> = map_b.iter().map(|&j| vals[j]).collect();
        let (x, y) = (eval(&a.expr, &xa), eval(&b.expr, &xb));
        let finite = |z: C| z.re.is_finite() && z.im.is_finite();
        if !finite(x) || !finite(y) {
            continue;
        }
        if !close(x, y, tol) {
            return Some(false);
        }
        agree += 1;
    }
    if agree >= 3 { Some(true) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> f64 {
        let p = parse(s).unwrap_or_else(|| panic!("parse {s}"));
        assert!(p.vars.is_empty(), "{s} has vars {:?}", p.vars);
        eval(&p.expr, &[]).re
    }

    fn eq(a: &str, b: &str) -> Option<bool> {
        equal(&parse(a)?, &parse(b)?, 1e-6)
    }

    #[test]
    fn evaluates_constants() {
        let cases: &[(&str, f64)] = &[
            ("1+2*3", 7.0),
            ("\\frac{1}{2}", 0.5),
            ("\\frac12", 0.5),
            ("\\dfrac{3}{4}", 0.75),
            ("2^{10}", 1024.0),
            ("2^-1", 0.5),
            ("\\sqrt{16}", 4.0),
            ("\\sqrt[3]{27}", 3.0),
            ("2\\sqrt{2}", 2.0 * std::f64::consts::SQRT_2),
            ("\\sqrt2", std::f64::consts::SQRT_2),
            ("2\\frac{1}{2}", 2.5),
            ("-3\\frac{3}{4}", -3.75),
            ("2\\frac{3}{2}", 3.0),
            ("3\\pi", 3.0 * std::f64::consts::PI),
            ("\\frac{\\pi}{2}", std::f64::consts::FRAC_PI_2),
            ("5!", 120.0),
            ("-(3-5)", 2.0),
            ("2(3+4)", 14.0),
            ("6 \\div 3", 2.0),
            ("2 \\cdot 3", 6.0),
            ("|{-4}|", 4.0),
            ("\\sin(0)", 0.0),
            ("\\cos \\pi", -1.0),
            ("\\log 100", 2.0),
        ];
        for (s, want) in cases {
            let got = val(s);
            assert!((got - want).abs() < 1e-9, "{s}: {got} != {want}");
        }
    }

    #[test]
    fn compares_expressions() {
        assert_eq!(eq("x^2+2x+1", "(x+1)^2"), Some(true));
        assert_eq!(eq("x^2+2x+1", "(x+1)^3"), Some(false));
        assert_eq!(eq("\\frac{a}{b}", "a/b"), Some(true));
        assert_eq!(eq("\\frac{a}{b}", "b/a"), Some(false));
        assert_eq!(eq("2\\sqrt{x}", "\\sqrt{4x}"), Some(true));
        assert_eq!(eq("x_1+x_2", "x_2+x_1"), Some(true));
        assert_eq!(eq("x_1+x_2", "2x_1"), Some(false));
        assert_eq!(eq("\\sin^2 x + \\cos^2 x", "1"), Some(true));
        assert_eq!(eq("3+4i", "4i+3"), Some(true));
        assert_eq!(eq("3+4i", "3-4i"), Some(false));
    }

    #[test]
    fn refuses_what_it_cannot_bound() {
        let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&deep).is_none());
        let long = "1+".repeat(3000) + "1";
        assert!(parse(&long).is_none());
        assert!(parse("\\unknowncommand{3}").is_none());
        assert!(parse("(1,2)").is_none());
    }
}
