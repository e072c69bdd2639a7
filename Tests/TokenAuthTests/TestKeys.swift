/// TEST-ONLY keys, generated with the `openssl` CLI for these tests and used nowhere else:
///
///     openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem
///     openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem
///     openssl pkey -in rsa.pem -pubout
///
/// Checked in so the tests need no tool at run time and produce the same keys every run.
enum TestKeys {
    struct Pair {
        let privatePEM: String
        let publicPEM: String
    }

    static let rsaA = Pair(
        privatePEM: """
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDcXJhMmn8kg+AX
f1qOBwNtZ/43To3+FO/Ye5McRe0+6bJ8qv1qSjrCxiseBscF6gOqUfH8eLHWVSlq
exisIJcuLtZdy0evXIC4ZXOYZdSPOZal15aTLrMH1i2YH0ka21MUu4vExYxQoRA1
OKjLsazET36V5zeCHuu90kVP+ZUUZcUHBK7ylhAPtgVNLD8yLVKMJOauQ5FrfOkN
D2cS1Lm+gwIJelIEsgEiaSKaQsZat+/4LBHyK4AcsL2PefWI/lx+qlOaVv/kDB/n
JjaBnBHmfQSGjTzMivw2E/hS6eoBIOsDiswdU6+K6L/Zz9W22hmFvOlqsTB7YXkV
8Z7bgTwVAgMBAAECggEAFmKboBCDwPBal9h6mPnyaa9KPlEPEJQM51dqUtFxr9Xq
qUpvctg2jum1oJe8qQekNq2bYPPb0POWwPffQkEPSoQ8h4uqbRB/DPxVWVJi3OfT
O2aip7HzQuUJfa4T7ZQBJRaGNMeCoQAzlsx6LTMP42NV7yFtXJ0Kgp51JxIqCEe7
+oK19g3ItsMQCEXcyVsy5/ozOWtBe5Few4TcRuVmuz/O7xoZ47hOwbBbRdm39OQ9
yBGFHg4t3YSPt3FWyRxiyc2+IIBOVKcxld7c2qNxR4SMG1cg4wRaADWaoN6vUh7T
phNaKkztRCMcjNQAMKP3VuDSXBGWPXPNe2R/A85VIQKBgQD8q4tjCDBSYjsJNiL8
by9lAlthBqHf++Y38QX7UMYSjPdB714nlfCoppjGJesnfJKDWw4CieGxqXfX7zmZ
zBeWND/VanDkwDiYL6qKDJcRgJ5vQc0/HdftT+r2XLGCGmX46JfuTb23wu5sdIC/
lsGJdptp7eG5oTv4LONlVChisQKBgQDfRAx520uVKnENdTEsLnLy+Pg3ISS5nSk0
KUKDFszupwSU3XzbF45H9+C0gOqr+dgH/Wk6eMEDbjnoLtUfrSrqvJnBEQYWBvxW
tMFDxOTbrU1mQ6UfdSovPE9QHkaz9/OTkphDINo4HECDqAq8WgnWB7QIYkyY5pCs
msQv8TugpQKBgG7Zk71OymRaVCwmZBL7dH+MGSroDfyGNuo0A7vOJBffYFq8+UHE
tmBHNp8344LfVCfsuqjCdRHMl5dUjKC8uVxcb+ThXcX9ztZ1kwwdmelD1D5bUABw
x1qFxT9wSzAZBMO+x2j1ElacXp2WPyXOrfnw3x4KDw2xfu3SQ7EgytcBAoGBALqA
JI/SMPP8zQ053QaUEm+GrAmZRQ1MDDRHVwkcDbo5iCk2T2rQ5YiWtnzxx5Y7EUuz
UqiGYG0WMYcTP/LC+7u0KhfNubDCyx0+xsZufeJHhQUs8o0xmTh1/6bkc5k4QZ7/
cPN6SO9gIkAYKkemStsf+jKasnNy/l1Atyt5Lp8FAoGBAK9RsW8lX90x+ireUK59
gdOeN83vgy7ZSNbaE4UIRHpmJ3FhsLXNBEhFB4JLxcRTz0J2TE6Afvs0Fe/qDMMt
xFJRxmIUZZmql3iqx89dIk1MUf8NlKQtnAOxk2PsQbGeZ69XKVO20QbRUe3ZW7mX
E+pK4X8rDU4oW1zLKzXll00L
-----END PRIVATE KEY-----
""",
        publicPEM: """
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA3FyYTJp/JIPgF39ajgcD
bWf+N06N/hTv2HuTHEXtPumyfKr9ako6wsYrHgbHBeoDqlHx/Hix1lUpansYrCCX
Li7WXctHr1yAuGVzmGXUjzmWpdeWky6zB9YtmB9JGttTFLuLxMWMUKEQNTioy7Gs
xE9+lec3gh7rvdJFT/mVFGXFBwSu8pYQD7YFTSw/Mi1SjCTmrkORa3zpDQ9nEtS5
voMCCXpSBLIBImkimkLGWrfv+CwR8iuAHLC9j3n1iP5cfqpTmlb/5Awf5yY2gZwR
5n0Eho08zIr8NhP4UunqASDrA4rMHVOviui/2c/VttoZhbzparEwe2F5FfGe24E8
FQIDAQAB
-----END PUBLIC KEY-----
"""
    )

    static let rsaB = Pair(
        privatePEM: """
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCy1vdDzVrcWeGc
Eei4Ne1TCJ2xCURFVB05EE+WXlXlNJtgL2i096W+mSHO01ezp4dzlAEwJ2xxUFUe
QjfYrKW21YSr1A7uRmsK0h2IiQw/Nt7vJV4Rko2sDvMdK8X1imGZzMI12PI71A44
jOXS6iO87/Cps/FxVwQJBwuQpZH/JbrcGaZxEtIX4KFaB7Fz9sKEAvVcGhC9/0KA
GO+ZmYXx112U11CKUvrmuBdwvhplGJtGZ8+gemSc5zHPN3u9NW/mZKVrkwx5gYJl
AzwJjf2Hzh5LWpUiQ/O1RWukv2PX7WxfoOdgd/Fgh5yiuL5G3+b6mYszuFiZeMuG
tGVC+9ntAgMBAAECggEAEXywFmbm1suKIjjlFNgfEeKyiqxRiubn6ZvE8HrecshT
VhMkradWg13VXrQvK++6cKx89kCwm57jh88pR0xQcuGLdMLKR/XGQzta7G4cLrU2
lNNGULkQFc4rawOL+o+yrfeF2P6S5xM75b8vPNGst22NzoY8Gl1MFXblJFpwPW7A
7fEJsqZT+ffw6ydaU+qadGuOwy4eW5w8AAALJnqwhhKEc6yIbbdbtBiqPPArLl3/
9ftRKC5GARB79dH7Tt+cuTHjTUf2l3zvTOz5Qr9lJlsNiQJMEF6l1A6pYWvREJsp
phWC685jhUNKA9gjyB4vf25srAfr6S+t645EcOxn0QKBgQDZ7lkLCHokPUgnkZSJ
Oj8YNSgwr97pDKMlgKK2xIyqqBfZHN+Ja+jcgaqzGpdYHZTdIMR56ksPD3tBA3Vj
McSmcpGDmdz/zc0a2AWKWp9xgrkkQBiceW/OVUSYp23dL9o+3+pk5Su8ch+p1G6L
B3lRFMu7PN3xuYs4JaPzXN3wMQKBgQDSFH5llyfFBaxicwTj18Q22I56stjpASSu
KVDsj0Q+vUmbxVvVsKeQD1424YkT0BTSl2Z3vOYmsHeI4LGKxfLGhiBuvkaMXjk4
xEI/jTWFAkR4Sexy2vSi3XOwR+ylh6M7WeUwdvNtmib7KOMJwsXO47hBiiZGwHcI
xLfhE/QyfQKBgQDP5S8udkTGg2tsy9UN3/HGrxcK8wtL+NE9+mu+vNuQBVDSvleE
qdt3V3824pwT5AxZsmOcBeTaliM3TwxRt21od4zXJRWNNY9/FyqZ5H+L8m+Z5EdW
JgaBqBgLJFWLFpY1OrhIzdIeMCSCh3N4z4Vs0tDTamozqZPk2QuBIktaUQKBgHf+
0LvCfSritLZ/MFncUu1pAOlA4vkkeAkq/FhC9R5JDJR3RJ9oii2VOaFrbdrtTheD
9zmJooSS45RBk+fKbYPL9RaMhMuEvnaYU6btR5az1txGjVKFkpq8l2onixp5wVkT
XgAy0ZTXKlDn59cZc9da51I4UOi04skVZFqiBSgZAoGBAK5e6RaHTwPq0I/kGJA/
RxBIkcW5rCupUtcZWk5lKd2HSXRGFX5K5/X0K/h6WMZZXUbMVVlC/QUMhqE7XGgg
hrguoSG2uCY0EsnRE8/KdzoaVXptZl8b/+0t89rmsYrkejoWn2qz/zW38+w/oFc3
syCp7UnThxuLZTkoPBxJ6FXa
-----END PRIVATE KEY-----
""",
        publicPEM: """
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAstb3Q81a3FnhnBHouDXt
UwidsQlERVQdORBPll5V5TSbYC9otPelvpkhztNXs6eHc5QBMCdscVBVHkI32Kyl
ttWEq9QO7kZrCtIdiIkMPzbe7yVeEZKNrA7zHSvF9YphmczCNdjyO9QOOIzl0uoj
vO/wqbPxcVcECQcLkKWR/yW63BmmcRLSF+ChWgexc/bChAL1XBoQvf9CgBjvmZmF
8dddlNdQilL65rgXcL4aZRibRmfPoHpknOcxzzd7vTVv5mSla5MMeYGCZQM8CY39
h84eS1qVIkPztUVrpL9j1+1sX6DnYHfxYIecori+Rt/m+pmLM7hYmXjLhrRlQvvZ
7QIDAQAB
-----END PUBLIC KEY-----
"""
    )

    static let ecP256 = Pair(
        privatePEM: """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7k6qK2u2B9AlSdDu
PshPPfJ1QNH6+ULGQThC+NYVhZehRANCAARbV9l50EStQYnU4Q4/CKaFxS67mCK/
05BWo8mnbCwNQku3+3kXjkFTUPabhVQk2ZZFjv2isOtTo/YqpQy9sM3L
-----END PRIVATE KEY-----
""",
        publicPEM: """
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEW1fZedBErUGJ1OEOPwimhcUuu5gi
v9OQVqPJp2wsDUJLt/t5F45BU1D2m4VUJNmWRY79orDrU6P2KqUMvbDNyw==
-----END PUBLIC KEY-----
"""
    )

    static let ecP384 = Pair(
        privatePEM: """
-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCqO7aYZhJ1neUoVsI/
dmXwr7GJlShxDpTDXep6/L/jQNVHtITdmhiZpX/JKr6I3oKhZANiAAR8oOxdg2B1
FuQd5xJrUXXKbSjXRQi1vj+fWQK3HSDDFBx5e2eF18TsHtppG4jHxsRPDj76n/ew
py9ZIlacxNdyBQ6ItrYI4cgxrZ8j14qJ373IanpcEv1Hrp9KbU0ry8s=
-----END PRIVATE KEY-----
""",
        publicPEM: """
-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEfKDsXYNgdRbkHecSa1F1ym0o10UItb4/
n1kCtx0gwxQceXtnhdfE7B7aaRuIx8bETw4++p/3sKcvWSJWnMTXcgUOiLa2COHI
Ma2fI9eKid+9yGp6XBL9R66fSm1NK8vL
-----END PUBLIC KEY-----
"""
    )

    static let ecP521 = Pair(
        privatePEM: """
-----BEGIN PRIVATE KEY-----
MIHuAgEAMBAGByqGSM49AgEGBSuBBAAjBIHWMIHTAgEBBEIB70BsZeXzZZUW/s4Z
EbFR0iueUmuhBmzkFn/AYNN6NOL1rv2YbZzfe3wDXZjuFFu9AI5lnW1MItLcIAfA
jRTrqoShgYkDgYYABAEbmT/QVyuIfSh6rjRG13k0W8D1AxU0sZ8vfWQLl0nckTE6
c6r5/B+dnRM1Px1GdQ8qPjBD7qKpZuXIdWDm/7sIaACPvncp8mhxzQCrNr05517k
OWPlL5sENQFBWNdaqRFQSiURnruIlI1yDN988a+gLe8NCgMXHRliuf0No5SvwpuP
RQ==
-----END PRIVATE KEY-----
""",
        publicPEM: """
-----BEGIN PUBLIC KEY-----
MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQBG5k/0FcriH0oeq40Rtd5NFvA9QMV
NLGfL31kC5dJ3JExOnOq+fwfnZ0TNT8dRnUPKj4wQ+6iqWblyHVg5v+7CGgAj753
KfJocc0Aqza9Oede5Dlj5S+bBDUBQVjXWqkRUEolEZ67iJSNcgzffPGvoC3vDQoD
Fx0ZYrn9DaOUr8Kbj0U=
-----END PUBLIC KEY-----
"""
    )

    /// An RSA key too short to be accepted (1024 bits); public half only.
    /// `openssl genpkey -algorithm ED25519`.
    static let ed25519 = Pair(
        privatePEM: """
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIGNiG0zW8PuqeoSCwtGs9jZlcYEk01yyRf0UHWNIqXeC
-----END PRIVATE KEY-----
""",
        publicPEM: """
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAUMn6P1329NjBU3lJ8rMk5V048wIPmVcgkUC05/mJMXU=
-----END PUBLIC KEY-----
"""
    )

    /// The public halves of `rsaA`, `ecP256` and `ed25519` as JWK numbers (base64url), read
    /// with `openssl rsa -modulus` and `openssl pkey -outform DER`.
    static let rsaAModulus = "3FyYTJp_JIPgF39ajgcDbWf-N06N_hTv2HuTHEXtPumyfKr9ako6wsYrHgbHBeoDqlHx_Hix1lUpansYrCCXLi7WXctHr1yAuGVzmGXUjzmWpdeWky6zB9YtmB9JGttTFLuLxMWMUKEQNTioy7GsxE9-lec3gh7rvdJFT_mVFGXFBwSu8pYQD7YFTSw_Mi1SjCTmrkORa3zpDQ9nEtS5voMCCXpSBLIBImkimkLGWrfv-CwR8iuAHLC9j3n1iP5cfqpTmlb_5Awf5yY2gZwR5n0Eho08zIr8NhP4UunqASDrA4rMHVOviui_2c_VttoZhbzparEwe2F5FfGe24E8FQ"
    static let ecP256X = "W1fZedBErUGJ1OEOPwimhcUuu5giv9OQVqPJp2wsDUI"
    static let ecP256Y = "S7f7eReOQVNQ9puFVCTZlkWO_aKw61Oj9iqlDL2wzcs"
    static let ed25519X = "UMn6P1329NjBU3lJ8rMk5V048wIPmVcgkUC05_mJMXU"

    static let rsaWeakPublicPEM = """
-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDRoCWQzvIlMsQ7o7MyY32vHKqA
wi0xok0NzLKf9nsFpM4wy/8MPjlTKFP1tu23bpxWeU6mWudhni0RUROrUqIQC9DD
Hw7cKHIpeu1MB234Kiz19z6z7ApyuhsglgjN94laVrklhSru6HviBdxHtrT4oinw
C8NyKl/AwvRIWG/TAQIDAQAB
-----END PUBLIC KEY-----
"""
}
