//! Whole images: PNG structure and pixels, SVG content.
#![expect(
    clippy::cast_possible_wrap,
    reason = "test series hold a few hundred values"
)]

use super::*;
use rollupd_query::series::Series;

const T0: i64 = 1_704_067_200; // 2024-01-01 00:00 UTC

fn series(name: &str, values: Vec<f64>) -> Series {
    let n = values.len() as i64;
    Series::new(name, T0, T0 + n * 60, 60, values)
}

fn opts(q: &[(&str, &str)]) -> GraphOptions {
    GraphOptions::parse(|k| q.iter().rev().find(|(key, _)| *key == k).map(|(_, v)| *v)).unwrap()
}

fn svg(series: &[Series], events: &[EventMark], q: &[(&str, &str)]) -> String {
    let bytes = render(series, events, &opts(q), &Tz::UTC, Format::Svg).unwrap();
    String::from_utf8(bytes).unwrap()
}

/// The RGB pixels of one of our PNGs, decoded by the `png` crate.
fn pixels(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = ::png::Decoder::new(png).read_info().expect("a PNG");
    let mut out = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut out).expect("one frame");
    assert_eq!(info.color_type, ::png::ColorType::Rgb);
    out.truncate(info.buffer_size());
    (info.width, info.height, out)
}

fn count_color(rgb: &[u8], c: (u8, u8, u8)) -> usize {
    rgb.chunks(3).filter(|p| (p[0], p[1], p[2]) == c).count()
}

fn wave(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 50.0 + 40.0 * (i as f64 / 7.0).sin())
        .collect()
}

#[test]
fn png_has_the_asked_size_and_draws_the_series() {
    let s = [series("a.b.c", wave(120))];
    let png = render(
        &s,
        &[],
        &opts(&[("width", "400"), ("height", "200")]),
        &Tz::UTC,
        Format::Png,
    )
    .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (w, h, rgb) = pixels(&png);
    assert_eq!((w, h), (400, 200));
    // Black background, and graphite's blue (100,100,255) line and legend box.
    assert!(count_color(&rgb, (0, 0, 0)) > 400 * 200 / 2);
    assert!(count_color(&rgb, (100, 100, 255)) > 100);
}

#[test]
fn png_colours_follow_the_params() {
    let s = [series("x", wave(60))];
    let q = [
        ("bgcolor", "ffffff"),
        ("colorList", "00ff00"),
        ("hideLegend", "true"),
    ];
    let png = render(&s, &[], &opts(&q), &Tz::UTC, Format::Png).unwrap();
    let (w, h, rgb) = pixels(&png);
    assert_eq!((w, h), (330, 250));
    assert!(count_color(&rgb, (255, 255, 255)) > 330 * 250 / 2);
    assert!(count_color(&rgb, (0, 255, 0)) > 50);
    assert_eq!(count_color(&rgb, (100, 100, 255)), 0);
}

/// `threshold(300, 'crit', 'red')` is drawn red, as graphite-web draws it,
/// and does not use up a colour of the cycle: the plain series after it
/// takes the first (graphite's blue). Before, the colour was dropped and
/// an alert's PNG drew its critical line in blue.
#[test]
fn a_series_colour_of_its_own_wins_and_skips_the_cycle() {
    let mut red = series("crit", vec![300.0; 60]);
    red.color = Some("red".into());
    let s = [red, series("x", wave(60))];
    let png = render(&s, &[], &opts(&[]), &Tz::UTC, Format::Png).unwrap();
    let (_, _, rgb) = pixels(&png);
    assert!(count_color(&rgb, (200, 0, 50)) > 100); // graphite's "red"
    assert!(count_color(&rgb, (100, 100, 255)) > 100);
    // green, the cycle's second colour, is not used
    assert_eq!(count_color(&rgb, (0, 200, 0)), 0);
}

#[test]
fn svg_has_title_legend_and_one_line_per_series() {
    let s = [
        series("servers.web1.cpu", wave(90)),
        series(
            "servers.web2.cpu",
            wave(90).iter().map(|v| v * 2.0).collect(),
        ),
    ];
    let out = svg(&s, &[], &[("title", "CPU use"), ("vtitle", "percent")]);
    assert!(out.starts_with("<svg"), "{}", &out[..100]);
    assert!(out.contains(">\nCPU use\n</text>"), "title missing");
    assert!(out.contains(">\npercent\n</text>"), "vtitle missing");
    assert!(out.contains("rotate(270"), "vtitle is not upright");
    assert!(out.contains(">\nservers.web1.cpu\n</text>"));
    assert!(out.contains(">\nservers.web2.cpu\n</text>"));
    // blue (100,100,255) and green (0,200,0): one unbroken line each.
    assert_eq!(
        out.matches(r##"<polyline fill="none" opacity="1" stroke="#6464FF""##)
            .count(),
        1
    );
    assert_eq!(
        out.matches(r##"<polyline fill="none" opacity="1" stroke="#00C800""##)
            .count(),
        1
    );
}

#[test]
fn a_gap_breaks_the_line() {
    let mut v = wave(90);
    for x in &mut v[40..50] {
        *x = f64::NAN;
    }
    let out = svg(&[series("gappy", v.clone())], &[], &[]);
    assert_eq!(out.matches("<polyline").count(), 2, "{out}");
    // Two gaps, three pieces; drawNullAsZero joins them all again.
    for x in &mut v[70..75] {
        *x = f64::NAN;
    }
    assert_eq!(
        svg(&[series("gappy", v.clone())], &[], &[])
            .matches("<polyline")
            .count(),
        3
    );
    let out = svg(&[series("gappy", v)], &[], &[("drawNullAsZero", "true")]);
    assert_eq!(out.matches("<polyline").count(), 1);
}

#[test]
fn y_labels_and_time_labels() {
    // 0..100 over 1 h 30 min: labels 0..100 by 20, clock times.
    let v: Vec<f64> = (0..90).map(|i| f64::from(i) * 100.0 / 89.0).collect();
    let out = svg(&[series("ramp", v)], &[], &[("width", "600")]);
    for label in ["0 ", "20.0 ", "100.0 "] {
        assert!(
            out.contains(&format!(">\n{label}\n</text>")),
            "no y label {label:?}"
        );
    }
    assert!(out.contains(">\n00:20\n</text>"), "no time label");
    // A thousand times bigger: k suffixes.
    let v: Vec<f64> = (0..90).map(|i| f64::from(i) * 100_000.0 / 89.0).collect();
    let out = svg(&[series("ramp", v)], &[], &[]);
    assert!(out.contains(">\n100.0 k \n</text>"), "no k label");
    // Over a week: dates.
    let week = Series::new("w", T0, T0 + 7 * 86_400, 3600, wave(7 * 24));
    let out = svg(&[week], &[], &[("tz", "UTC")]);
    assert!(out.contains(">\n01/03\n</text>"), "no date label");
}

#[test]
fn no_series_is_no_data() {
    let out = svg(&[], &[], &[("title", "nothing")]);
    assert!(out.contains(">\nNo Data\n</text>"));
    assert!(!out.contains("nothing"));
    let png = render(&[], &[], &opts(&[]), &Tz::UTC, Format::Png).unwrap();
    let (_, _, rgb) = pixels(&png);
    // graphite's red text.
    assert!(
        rgb.chunks(3).any(|p| p[0] > 150 && p[1] < 60),
        "no red text"
    );
}

#[test]
fn areas_fill_and_stack() {
    let s = [series("a", vec![10.0; 60]), series("b", vec![20.0; 60])];
    let out = svg(&s, &[], &[("areaMode", "stacked"), ("hideLegend", "true")]);
    assert_eq!(out.matches("<polygon").count(), 2);
    assert_eq!(out.matches("<polyline").count(), 0);
    // Stacked to 30: the axis reaches 30, not 20.
    assert!(
        out.contains(">\n30.0 \n</text>"),
        "stack top not on the axis"
    );
    let out = svg(&s, &[], &[("areaMode", "first"), ("hideLegend", "true")]);
    assert_eq!(out.matches("<polygon").count(), 1);
    assert_eq!(out.matches("<polyline").count(), 1);
    let out = svg(
        &s,
        &[],
        &[
            ("areaMode", "all"),
            ("areaAlpha", "0.5"),
            ("hideLegend", "true"),
        ],
    );
    assert_eq!(out.matches(r#"<polygon opacity="0.5""#).count(), 2);
    assert_eq!(out.matches("<polyline").count(), 2);
}

#[test]
fn draw_as_infinite_is_vertical_lines_at_nonzero_points() {
    let s = series("deploys", {
        let mut v = vec![0.0; 60];
        v[10] = 1.0;
        v[40] = 1.0;
        v
    });
    let o = opts(&[("hideAxes", "true"), ("hideLegend", "true")]);
    let plots = [graph::Plot {
        series: &s,
        infinite: true,
    }];
    let out =
        String::from_utf8(render_plots(&plots, &[], &o, &Tz::UTC, Format::Svg).unwrap()).unwrap();
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("<line") && l.contains("#6464FF"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    for l in lines {
        let attr = |k: &str| {
            l.split(&format!("{k}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap()
        };
        assert_eq!(attr("x1"), attr("x2"));
        assert_ne!(attr("y1"), attr("y2"));
    }
    assert_eq!(out.matches("<polyline").count(), 0);
}

#[test]
fn events_are_marked_and_named() {
    let s = [series("load", wave(60))];
    let ev = |when, what: &str, tags: &[&str], id| Event {
        id,
        when,
        what: what.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        data: String::new(),
    };
    let deploy = ev(T0 + 600, "deploy web 1", &["deploy", "web", "db"], 1);
    let db = ev(T0 + 1800, "db failover", &["db"], 2);
    // The deploy is in both groups: marked once, in the first's colour.
    let marks = event_marks(&[vec![deploy.clone()], vec![deploy, db]]);
    assert_eq!(marks.len(), 2);
    assert_eq!(marks[0].color, color::EVENT_LIST[0]);
    assert_eq!(marks[1].color, color::EVENT_LIST[1]);
    let out = svg(&s, &marks, &[("width", "500")]);
    // In the legend and beside the line: twice each.
    assert_eq!(out.matches(">\ndeploy web 1\n</text>").count(), 2);
    assert_eq!(out.matches(">\ndb failover\n</text>").count(), 2);
    let orange = out
        .lines()
        .filter(|l| l.contains("<line") && l.contains("#FFA500"))
        .count();
    assert_eq!(orange, 1);
}

#[test]
fn legend_hides_itself_past_ten_series_unless_asked() {
    let many: Vec<Series> = (0..11)
        .map(|i| series(&format!("s{i:02}"), wave(30)))
        .collect();
    let out = svg(&many, &[], &[]);
    assert!(!out.contains(">\ns00\n</text>"));
    let out = svg(&many, &[], &[("hideLegend", "false"), ("height", "600")]);
    assert!(out.contains(">\ns10\n</text>"));
    let out = svg(&many[..2], &[], &[("hideLegend", "true")]);
    assert!(!out.contains(">\ns00\n</text>"));
}

#[test]
fn many_points_draw_about_one_per_column() {
    // 1 day at 10 s on an 800 px graph: the line has at most ~800 vertices.
    let v: Vec<f64> = (0..8640).map(|i| (f64::from(i) / 50.0).sin()).collect();
    let s = Series::new("dense", T0, T0 + 86_400, 10, v);
    let out = svg(&[s], &[], &[("width", "800"), ("height", "400")]);
    let line = out.lines().find(|l| l.contains("<polyline")).unwrap();
    let vertices = line
        .split("points=\"")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .count();
    assert!((300..=800).contains(&vertices), "{vertices} vertices");
}

#[test]
fn values_beyond_y_max_are_clipped_not_squashed() {
    let v: Vec<f64> = (0..60)
        .map(|i| if i < 30 { 10.0 } else { 1000.0 })
        .collect();
    let out = svg(
        &[series("spiky", v)],
        &[],
        &[("yMax", "100"), ("hideLegend", "true")],
    );
    // The line runs at 10 and then leaves through the top: one piece.
    assert_eq!(out.matches("<polyline").count(), 1);
}

/// The speed target: 10 series of a day at 10 s as an 800 × 400 PNG.
/// `cargo test --release --no-default-features --lib png_speed -- --ignored --nocapture`
#[test]
#[ignore]
fn png_speed() {
    let all: Vec<Series> = (0..10)
        .map(|k| {
            let v: Vec<f64> = (0..8640)
                .map(|i| {
                    let i = f64::from(i);
                    100.0
                        + 80.0 * (i / (300.0 + 40.0 * f64::from(k)) + f64::from(k)).sin()
                        + 10.0 * (i / 7.0).sin()
                })
                .collect();
            Series::new(&format!("perf.single.s{k}"), T0, T0 + 86_400, 10, v)
        })
        .collect();
    let o = opts(&[("width", "800"), ("height", "400")]);
    let plots: Vec<graph::Plot<'_>> = all
        .iter()
        .map(|s| graph::Plot {
            series: s,
            infinite: false,
        })
        .collect();
    let mut best = [f64::INFINITY; 4];
    let mut size = 0;
    for _ in 0..10 {
        let t = std::time::Instant::now();
        let png = render(&all, &[], &o, &Tz::UTC, Format::Png).unwrap();
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        size = png.len();
        let t = std::time::Instant::now();
        render(&all, &[], &o, &Tz::UTC, Format::Svg).unwrap();
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        let mut buf = vec![0u8; 800 * 400 * 3];
        {
            let mut c = Canvas::new(BitMapBackend::with_buffer(&mut buf, (800, 400)), false);
            graph::draw(&mut c, &o, &Tz::UTC, &plots, &[]).unwrap();
            c.finish().unwrap();
        }
        best[2] = best[2].min(t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        super::png::encode_rgb(800, 400, &buf).unwrap();
        best[3] = best[3].min(t.elapsed().as_secs_f64());
    }
    let png = render(&all, &[], &o, &Tz::UTC, Format::Png).unwrap();
    std::fs::write(std::env::temp_dir().join("rollupd_png_speed.png"), png).unwrap();
    println!(
        "png {:.2} ms ({size} bytes), svg {:.2} ms; png = drawing {:.2} ms + encoding {:.2} ms",
        best[0] * 1e3,
        best[1] * 1e3,
        best[2] * 1e3,
        best[3] * 1e3
    );
}

#[test]
fn odd_inputs_still_draw() {
    let nan = f64::NAN;
    let cases: Vec<Vec<Series>> = vec![
        vec![series("all-null", vec![nan; 30])],
        vec![series("one-point", vec![5.0])],
        vec![
            series("flat", vec![0.0; 30]),
            series("neg", vec![-1e12; 30]),
        ],
        vec![series("huge", vec![1e300, -1e300, 1e-300])],
        vec![Series::new("empty", T0, T0 + 60, 60, vec![])],
        vec![series(
            "inf",
            vec![f64::INFINITY, 1.0, f64::NEG_INFINITY, 2.0],
        )],
    ];
    let params: &[&[(&str, &str)]] = &[
        &[],
        &[("width", "1"), ("height", "1")],
        &[
            ("width", "40"),
            ("height", "30"),
            ("title", "t"),
            ("vtitle", "v"),
        ],
        &[("fontSize", "200"), ("title", "big")],
        &[
            ("areaMode", "stacked"),
            ("lineMode", "staircase"),
            ("drawNullAsZero", "true"),
        ],
        &[
            ("areaMode", "all"),
            ("lineMode", "connected"),
            ("areaAlpha", "0.3"),
        ],
        &[("yMin", "-5"), ("yMax", "5"), ("yStep", "0.000001")],
        &[("graphOnly", "true")],
        &[("hideAxes", "true"), ("hideLegend", "false")],
        &[
            ("yUnitSystem", "binary"),
            ("minorY", "3"),
            ("yDivisors", "3,7"),
        ],
        &[
            ("xFormat", "%Y"),
            ("tz", "Europe/Berlin"),
            ("lineWidth", "30"),
        ],
        &[
            ("title", "a\nb\nc"),
            ("vtitle", "x\ny"),
            ("uniqueLegend", "true"),
        ],
    ];
    for s in &cases {
        for q in params {
            for f in [Format::Png, Format::Svg] {
                let o = opts(q);
                let out = render(s, &[], &o, &Tz::UTC, f);
                assert!(out.is_ok(), "{:?} {q:?}: {:?}", s[0].name, out.err());
                if f == Format::Png {
                    let (w, h, _) = pixels(&out.unwrap());
                    assert_eq!((w, h), (o.width, o.height));
                }
            }
        }
    }
}
