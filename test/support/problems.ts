/** Assertions on the APIs' problem+json answers (RFC 9457). */

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: { field: string; message: string }[];
  [extension: string]: unknown;
}

export async function expectProblem(res: Response, status: number): Promise<{ body: ProblemBody; text: string }> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${text.slice(0, 500)}`);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const body = JSON.parse(text) as ProblemBody;
  expect(body).toMatchObject({ status, type: expect.any(String), title: expect.any(String) });
  return { body, text };
}

/** A 400 whose `errors` name every one of `fields`. */
export async function expectInvalid(
  res: Response,
  fields: string[],
  status: 400 | 422 = 400,
): Promise<{ body: ProblemBody; text: string }> {
  const problem = await expectProblem(res, status);
  const named = (problem.body.errors ?? []).map((e) => e.field);
  expect(named).toEqual(expect.arrayContaining(fields));
  return problem;
}
