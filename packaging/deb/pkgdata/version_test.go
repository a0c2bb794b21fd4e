package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestVersionOrder checks that versions made from git describe are valid
// and sort as their commits do, by dpkg's rules and by rpm's (when the
// tools are here).
func TestVersionOrder(t *testing.T) {
	f := func(describe, want string) string {
		t.Helper()
		got, err := fromDescribe(describe)
		if err != nil || got != want {
			t.Fatalf("fromDescribe(%q) = %q, %v; want %q", describe, got, err, want)
		}
		return got
	}
	ordered := []string{
		join("0.0.0", "203", "e57e13b", false),
		join("0.0.0", "204", "0a1b2c3", false),
		join("0.0.0", "204", "0a1b2c3", true),
		f("v1.2.0-rc1-0-gabc1234", "1.2.0~rc1"),
		f("v1.2.0-0-gdef5678", "1.2.0"),
		f("v1.2.0-0-gdef5678-dirty", "1.2.0+git0.gdef5678.dirty"),
		f("v1.2.0-2-g1234567", "1.2.0+git2.g1234567"),
		f("v1.2.0-10-g0000000", "1.2.0+git10.g0000000"),
		f("1.3.0-0-gfedcba9", "1.3.0"),
	}
	if _, err := fromDescribe("e57e13b"); err == nil {
		t.Errorf("fromDescribe accepted a describe without a tag")
	}
	for _, v := range ordered {
		if strings.ContainsAny(v, "-_: ") {
			t.Errorf("%q is not a valid upstream version for both formats", v)
		}
	}
	dpkg, dpkgErr := exec.LookPath("dpkg")
	rpm, rpmErr := exec.LookPath("rpm")
	if dpkgErr != nil && rpmErr != nil {
		t.Skip("neither dpkg nor rpm is here to compare versions")
	}
	for i := 1; i < len(ordered); i++ {
		a, b := ordered[i-1], ordered[i]
		if dpkgErr == nil {
			if err := exec.Command(dpkg, "--compare-versions", a+"-1", "lt", b+"-1").Run(); err != nil {
				t.Errorf("dpkg does not sort %s before %s", a, b)
			}
		}
		if rpmErr == nil {
			out, err := exec.Command(rpm, "--eval", "%{lua:print(rpm.vercmp('"+a+"', '"+b+"'))}").Output()
			if err != nil || strings.TrimSpace(string(out)) != "-1" {
				t.Errorf("rpm does not sort %s before %s: %q %v", a, b, out, err)
			}
		}
	}
}

// TestWithoutApacheTerms: the deb's copyright file keeps every other
// license and notice of a file, and no Apache terms (which lintian calls
// an error).
func TestWithoutApacheTerms(t *testing.T) {
	in := "Copyright (c) 2019 Someone\n\nPermission is hereby granted, free of charge, ...\n\n" +
		"                                 Apache License\n                           Version 2.0, January 2004\n" +
		"   TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION\n   1. Definitions.\n   END OF TERMS AND CONDITIONS\n\n" +
		"   Copyright 2016 The New York Times Company\n   Licensed under the Apache License, Version 2.0\n"
	out := withoutApacheTerms(in)
	for _, want := range []string{"Permission is hereby granted", "New York Times", "/usr/share/common-licenses/Apache-2.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("withoutApacheTerms dropped %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "TERMS AND CONDITIONS FOR USE") {
		t.Errorf("withoutApacheTerms kept the terms:\n%s", out)
	}
	kind, err := classify(in)
	if err != nil || kind != "Apache-2.0 and MIT" {
		t.Errorf("classify = %q, %v; want Apache-2.0 and MIT", kind, err)
	}
	if _, err := classify("All rights reserved."); err == nil {
		t.Errorf("classify named a license in a text that has none")
	}
}

// TestCopyrightParagraphs: every paragraph of the copyright file is one
// deb822 paragraph (a blank line inside a field would cut it), each Files
// paragraph has Copyright and License, and every Go module of the binary
// this test runs as has its paragraph.
func TestCopyrightParagraphs(t *testing.T) {
	var b strings.Builder
	paragraph{files: []string{"a/*"}, copyright: []string{"2020 A", "2021 B"}, license: "MIT",
		text: "\nMIT License\n\nPermission is hereby granted\n\n", comment: "first\n\nNOTICE:\nsecond\n"}.write(&b)
	got := b.String()
	want := "\nFiles: a/*\nCopyright: 2020 A\n 2021 B\nComment: first\n .\n NOTICE:\n second\nLicense: MIT\n MIT License\n .\n Permission is hereby granted\n"
	if got != want {
		t.Errorf("paragraph:\n%q\nwant\n%q", got, want)
	}
}
