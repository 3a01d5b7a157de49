import axios from "axios";

const GITHUB_TOKEN = "ghp_UibRLi7uTXnRDlrKNOXZA5BU2BCiaX1j3pvk";
const GITLAB_TOKEN: string = "glpat-2D9LVDCV-580vDNyu_Ux";
const EXAMPLE_TOKEN = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

export async function listRepos(org: string) {
  const res = await axios.get(`https://api.github.com/orgs/${org}/repos`, {
    headers: { Authorization: `Bearer ${GITHUB_TOKEN}` },
  });
  return res.data;
}

export const retryDelaysMs = [250, 500, 1000, 2000, 4000];
export const traceId = "39749e2c491eb9487395018f7944fe07";
